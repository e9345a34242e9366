"""Registry-wide and behavioural tests of the backbone on tiny configs."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block as TimmBlock

import endofm
from endofm.models import list_models, model_config
from endofm.models.vision_transformer import attend, sequences_per_block

TINY = dict(img_size=32, embed_dim=48, depth=2, num_heads=4, num_frames=2)


def tiny(**kw):
    return endofm.create_model("endofm_vit_base_patch16", **{**TINY, **kw})


@pytest.mark.parametrize("name", list_models())
def test_registry_models_build_and_train(name):
    torch.manual_seed(0)
    model = endofm.create_model(name, img_size=32, depth=2, num_frames=2)
    x = torch.randn(2, 3, 2, 32, 32)
    out = model(x)
    assert out.shape == (2, model_config(name)["embed_dim"])
    assert torch.isfinite(out).all()
    out.pow(2).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_unknown_model_and_override_errors():
    with pytest.raises(ValueError, match="unknown model 'vit_huge'"):
        endofm.create_model("vit_huge")
    with pytest.raises(ValueError, match=r"unknown setting\(s\).*\['depht'\]"):
        endofm.create_model("endofm_vit_tiny_patch16", depht=3)


@pytest.mark.parametrize("shape", [(1, 3, 1, 32, 32), (2, 3, 3, 48, 32), (1, 3, 5, 16, 64),
                                   (1, 3, 8, 64, 48)])
def test_any_frames_and_non_square_sizes(shape):
    model = tiny().eval()
    with torch.no_grad():
        tokens = model.forward_features(torch.randn(shape))
    b, _, t, h, w = shape
    assert tokens.shape == (b, 1 + (h // 16) * (w // 16) * t, 48)


def test_size_not_multiple_of_patch_is_an_error():
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        tiny()(torch.randn(1, 3, 2, 40, 32))


def test_bf16_autocast_close_to_fp32():
    torch.manual_seed(0)
    model = tiny(drop_path_rate=0.0).eval()
    x = torch.randn(2, 3, 2, 32, 32)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    cos = torch.nn.functional.cosine_similarity(ref, low.float(), dim=-1)
    assert (cos >= 0.99).all()


def test_grad_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    model = tiny(drop_path_rate=0.0)
    x = torch.randn(2, 3, 2, 32, 32)
    model(x).sum().backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], atol=1e-6, rtol=1e-5)


def test_sdpa_equals_explicit_attention():
    torch.manual_seed(0)
    model = tiny().eval()
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        fast = model(x)
        model.set_explicit_attention(True)
        slow = model(x)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_temporal_fc_zero_init_except_first_block():
    model = tiny(depth=3)
    assert model.blocks[0].temporal_fc.weight.abs().sum() > 0
    assert all(b.temporal_fc.weight.abs().sum() == 0 for b in model.blocks[1:])


def test_intermediate_layers_and_attention_maps():
    model = tiny(depth=3).eval()
    x = torch.randn(2, 3, 2, 32, 48)
    with torch.no_grad():
        outs = model.get_intermediate_layers(x, n=[0, 2], reshape=True)
        last = model.get_intermediate_layers(x, n=1, norm=True)[0]
        attn = model.get_last_selfattention(x)
        feats = model.forward_features(x)
    assert [o.shape for o in outs] == [(2, 48, 2, 2, 3)] * 2
    torch.testing.assert_close(last, feats)
    assert attn.shape == (2, 2, 4, 7, 7)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 2, 4, 7))
    with pytest.raises(ValueError, match="out of range"):
        model.get_intermediate_layers(x, n=[5])
    space_only = tiny(attention_type="space_only").eval()
    assert space_only.get_intermediate_layers(x)[0].shape == (2, 7, 48)  # frames averaged
    with pytest.raises(ValueError, match=r"reshape=True\) needs each frame's own tokens"):
        space_only.get_intermediate_layers(x, reshape=True)


def timm_reference(model, x: torch.Tensor) -> torch.Tensor:
    """The clip embedding ``[B, D]`` of a ``space_only`` or ``joint_space_time`` model computed
    with timm's ViT blocks (loaded with the model's weights) on tokens built by hand: every
    frame patch-embedded, CLS prepended, the spatial table added per frame and the temporal
    table per location; ``space_only`` runs each frame alone and averages the frames before
    the final norm, ``joint_space_time`` attends over all frames' tokens at once."""
    blocks = []
    for blk in model.blocks:
        ref = TimmBlock(model.embed_dim, model.num_heads, qkv_bias=True,
                        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
        ref.load_state_dict(blk.state_dict())
        blocks.append(ref.eval())
    b, _, t = x.shape[:3]
    cls = model.cls_token.expand(b, -1, -1) + model.pos_embed[:, :1]
    frames = [model.patch_embed.proj(x[:, :, k]).flatten(2).transpose(1, 2)
              + model.pos_embed[:, 1:] for k in range(t)]  # T x [B, N, D]
    if model.attention_type == "space_only":
        outs = []
        for patches in frames:
            tokens = torch.cat([cls, patches], dim=1)
            for blk in blocks:
                tokens = blk(tokens)
            outs.append(tokens)
        return model.norm(torch.stack(outs).mean(0))[:, 0]
    patches = torch.cat([f + model.time_embed[:, k:k + 1] for k, f in enumerate(frames)], dim=1)
    tokens = torch.cat([cls, patches], dim=1)
    for blk in blocks:
        tokens = blk(tokens)
    return model.norm(tokens)[:, 0]


@pytest.mark.parametrize("attention_type", ["space_only", "joint_space_time"])
def test_attention_ablations(attention_type):
    torch.manual_seed(0)
    model = tiny(attention_type=attention_type, num_frames=3).eval()
    assert ("time_embed" in dict(model.named_parameters())) == (attention_type != "space_only")
    with torch.no_grad():
        for p in model.parameters():  # no zero tables, no identical norms
            p.add_(torch.randn_like(p), alpha=0.2)
        x = torch.randn(2, 3, 3, 32, 32)
        out = model(x)
        torch.testing.assert_close(out, timm_reference(model, x), atol=1e-5, rtol=1e-5)
        shuffled = model(x[:, :, [2, 0, 1]])
        attn = model.get_last_selfattention(x)
    # frames averaged without a temporal table: the order of the frames cannot matter
    assert torch.allclose(out, shuffled, atol=1e-5) == (attention_type == "space_only")
    assert attn.shape[-1] == (5 if attention_type == "space_only" else 13)


def test_drop_path_is_linear_over_depth():
    model = tiny(depth=3, drop_path_rate=0.2)
    assert isinstance(model.blocks[0].drop_path, torch.nn.Identity)
    assert [b.drop_path.drop_prob for b in model.blocks[1:]] == pytest.approx([0.1, 0.2])


def test_builds_on_meta_device():
    with torch.device("meta"):
        model = tiny()
        out = model(torch.empty(1, 3, 2, 32, 32))
    assert out.shape == (1, 48) and out.device.type == "meta"


@pytest.mark.parametrize(("batch", "length", "dtype", "blocks"), [
    (196, 8, torch.bfloat16, 4), (196, 8, torch.float32, 2), (392, 8, torch.bfloat16, 4),
    (196, 16, torch.float32, 1), (196, 16, torch.bfloat16, 2), (7, 8, torch.bfloat16, 1),
    (8, 197, torch.bfloat16, 1), (196, 4, torch.float32, 4),
])
def test_short_sequences_are_packed_to_the_kernels_block_rows(batch, length, dtype, blocks):
    assert sequences_per_block(batch, length, dtype) == blocks


@pytest.mark.parametrize(("batch", "length", "dtype", "tolerance"), [
    (196, 8, torch.float32, 1e-6), (196, 8, torch.bfloat16, 2e-2), (12, 4, torch.float32, 1e-6),
    (7, 8, torch.float32, None),
])
def test_packed_attention_is_the_plain_attention(batch, length, dtype, tolerance, monkeypatch):
    """Without autograd on a CPU the sequences are attended several at a time behind a
    block-diagonal mask; the result is each sequence's own attention (bf16: within its
    rounding). With autograd the plain call runs."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(batch, 3, length, 16).to(dtype) for _ in range(3))
    want = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    masks = []
    sdpa = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        masks.append(kwargs.get("attn_mask"))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        got = attend(q, k, v)
    assert got.shape == q.shape and got.dtype == dtype
    packed = sequences_per_block(batch, length, dtype) > 1
    assert (masks[-1] is not None) == packed
    if packed:
        assert float((got.double() - want).abs().max()) <= tolerance
    else:
        assert torch.equal(got, sdpa(q, k, v))
    with torch.enable_grad():
        attend(q.requires_grad_(), k, v)
    assert masks[-1] is None
