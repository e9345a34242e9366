"""Readers for the public downstream datasets (PolypDiag, CVC-12k, KUMC) in their download
layouts. Each returns plain records (:mod:`endofm.data.datasets.records`)."""

from endofm.data.datasets.cvc import read_cvc
from endofm.data.datasets.kumc import read_kumc
from endofm.data.datasets.polypdiag import read_polypdiag
from endofm.data.datasets.records import (
    CvcSequence,
    DatasetError,
    KumcFrame,
    KumcVideo,
    VideoItem,
)

__all__ = [
    "CvcSequence",
    "DatasetError",
    "KumcFrame",
    "KumcVideo",
    "VideoItem",
    "read_cvc",
    "read_kumc",
    "read_polypdiag",
]
