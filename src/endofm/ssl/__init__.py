"""Self-supervised spatial-temporal pre-training (Endo-FM: L_cv + L_dm, DINO-style)."""

from endofm.ssl.config import PretrainConfig
from endofm.ssl.head import DINOHead
from endofm.ssl.loss import STLoss, view_pairs
from endofm.ssl.meta_arch import Encoder, SSLMetaArch, forward_views
from endofm.ssl.trainer import pretrain

__all__ = ["DINOHead", "Encoder", "PretrainConfig", "SSLMetaArch", "STLoss", "forward_views",
           "pretrain", "view_pairs"]
