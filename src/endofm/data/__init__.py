"""Video data: decoding, clip sampling, pre-training views, dataset readers, sample data."""

from endofm.data.datasets import (
    CvcSequence,
    DatasetError,
    KumcFrame,
    KumcVideo,
    VideoItem,
    read_cvc,
    read_kumc,
    read_polypdiag,
)
from endofm.data.manifest import (
    ClipItem,
    read_manifest,
    resolve_items,
    scan_videos,
    write_manifest,
)
from endofm.data.prepare import PrepareReport, prepare_pretrain
from endofm.data.pretrain_dataset import PretrainClipDataset
from endofm.data.synth import synthesize
from endofm.data.video import (
    FileVideo,
    FrameFolder,
    VideoError,
    VideoSource,
    VideoWriter,
    open_video,
    write_video,
)
from endofm.data.views import PretrainViews, PretrainViewsConfig, collate_views, group_by_shape

__all__ = [
    "ClipItem",
    "CvcSequence",
    "DatasetError",
    "FileVideo",
    "FrameFolder",
    "KumcFrame",
    "KumcVideo",
    "PrepareReport",
    "PretrainClipDataset",
    "PretrainViews",
    "PretrainViewsConfig",
    "VideoError",
    "VideoItem",
    "VideoSource",
    "VideoWriter",
    "collate_views",
    "group_by_shape",
    "open_video",
    "prepare_pretrain",
    "read_cvc",
    "read_kumc",
    "read_manifest",
    "read_polypdiag",
    "resolve_items",
    "scan_videos",
    "synthesize",
    "write_manifest",
    "write_video",
]
