"""The backbone and loaders reproduce the original Endo-FM model's outputs (fixture)."""

import json
from pathlib import Path

import pytest
import torch

import endofm

TOL = 1e-4
META = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny" / "meta.json"
CASES = json.loads(META.read_text())["cases"]


@pytest.fixture(scope="module")
def model(reference):
    return endofm.create_model("endofm_vit_base_patch16", pretrained=reference["pretrain"],
                               num_heads=reference["config"]["num_heads"]).eval()


def test_config_inferred_from_checkpoint(model, reference):
    cfg = reference["config"]
    assert (model.img_size, model.embed_dim, model.depth, model.num_frames) == (
        cfg["img_size"], cfg["embed_dim"], cfg["depth"], cfg["num_frames"])


@pytest.mark.parametrize("case", range(len(CASES)))
def test_cls_matches_reference_for_every_case(model, reference, case):
    x = reference["inputs"][case]
    assert list(x.shape) == CASES[case]
    with torch.no_grad():
        out = model(x)
    expected = reference["outputs"][f"cls_{case}"]
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=TOL, rtol=0)


def test_all_tokens_match_reference_layout(model, reference):
    x = reference["inputs"][0]
    with torch.no_grad():
        tokens = model.forward_features(x)
    torch.testing.assert_close(tokens, reference["outputs"]["tokens_0"], atol=TOL, rtol=0)


def test_reshaped_tokens_follow_documented_order(model, reference):
    x = reference["inputs"][0]
    b, _, t, height, width = x.shape
    h, w = height // 16, width // 16
    with torch.no_grad():
        (vol,) = model.get_intermediate_layers(x, n=1, norm=True, reshape=True)
    tokens = reference["outputs"]["tokens_0"]
    assert vol.shape == (b, model.embed_dim, t, h, w)
    i, j, f = 1, 2, 3
    torch.testing.assert_close(vol[:, :, f, i, j], tokens[:, 1 + (i * w + j) * t + f],
                               atol=TOL, rtol=0)


def test_polypdiag_classifier_logits(reference):
    clf = endofm.load_classifier(reference["polypdiag"], num_heads=reference["config"]["num_heads"])
    with torch.no_grad():
        logits = clf(reference["inputs"][0])
    torch.testing.assert_close(logits, reference["outputs"]["classifier_logits_0"], atol=TOL,
                               rtol=0)
