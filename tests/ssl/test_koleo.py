import math

import pytest
import torch

import endofm
from endofm.models.config import ATTENTION_TYPES
from endofm.ssl import DINOHead, Encoder, SSLMetaArch
from endofm.ssl.config import SSLLossConfig
from endofm.ssl.koleo import koleo_loss
from endofm.ssl.objective import SSLObjective


def test_matches_hand_computation_on_four_points():
    # directions 0°, 90°, 180°, 45° (lengths differ: the loss normalises them)
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-0.5, 0.0], [1.0, 1.0]], requires_grad=True)
    near = 2 * math.sin(math.pi / 8)  # chord of 45°: 0° and 90° both have 45° as neighbour
    expected = -(3 * math.log(near) + math.log(math.sqrt(2))) / 4  # 180°'s nearest is 90°
    loss = koleo_loss(x)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_spread_points_score_lower_than_clustered_ones():
    spread = torch.eye(4)
    clustered = torch.eye(4) * 0.1 + 1.0
    assert koleo_loss(spread) < koleo_loss(clustered)


def test_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2"):
        koleo_loss(torch.randn(1, 8))


def meta_arch(attention_type: str, use_mask_token: bool = False, **loss) -> SSLMetaArch:
    torch.manual_seed(0)
    backbone = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, num_frames=2,
                                   embed_dim=48, depth=1, num_heads=4,
                                   attention_type=attention_type, use_mask_token=use_mask_token)
    return SSLMetaArch(Encoder(backbone, DINOHead(48, 32, 64, 16)),
                       SSLObjective(32, SSLLossConfig(**loss))).eval()


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_koleo_is_taken_on_each_global_views_clip_embedding(attention_type):
    """With KoLeo on (iBOT off) the step's masked forward hides nothing, and its term is KoLeo
    on the student's clip embeddings (``backbone(view)``, ``[B, D]``) summed over the global
    views, for every attention type (``space_only`` averages the frames' tokens)."""
    meta = meta_arch(attention_type, koleo_weight=0.5)
    gen = torch.Generator().manual_seed(1)
    views = [torch.randn(3, 3, 2, 32, 32, generator=gen), torch.randn(3, 3, 4, 32, 32,
                                                                      generator=gen),
             torch.randn(3, 3, 2, 16, 16, generator=gen)]
    with torch.no_grad():
        masks = meta.draw_masks(views[:2], gen)
        outputs = meta.forward_masked(views, masks, meta.objective.mask_input)
        loss = meta(views, 0.04, gen).loss
        embeddings = [meta.student.backbone(v) for v in views[:2]]
        plain = meta.forward_plain(views)
        plain_student, plain_teacher = plain.student, plain.teacher
    assert not any(m.any() for m in masks)
    for cls, embedding in zip(outputs.student_cls, embeddings, strict=True):
        torch.testing.assert_close(cls, embedding)
    for masked, plain in zip(outputs.student + outputs.teacher, plain_student + plain_teacher,
                             strict=True):
        torch.testing.assert_close(masked, plain)
    expected = koleo_loss(embeddings[0]) + koleo_loss(embeddings[1])
    torch.testing.assert_close(loss.logs["koleo"], expected)
    torch.testing.assert_close(loss.total, loss.logs["dino_loss"] + 0.5 * expected)


def test_masked_patch_training_refuses_a_backbone_that_averages_the_frames():
    with pytest.raises(ValueError, match=r"masked-patch training \(loss.ibot_weight > 0\) "
                                         r"needs each frame's own tokens"):
        meta_arch("space_only", use_mask_token=True)
    meta = meta_arch("space_only")
    masks = torch.zeros(2, 8, dtype=torch.bool)
    masks[1, 3] = True
    with pytest.raises(ValueError, match="a masked-patch target needs each frame's own tokens"):
        meta.student.forward_masked(torch.randn(2, 3, 2, 32, 32), masks, mask_input=False)
