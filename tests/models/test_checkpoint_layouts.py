"""Every checkpoint layout of docs/release.md#checkpoint-layouts loads to the same model; every
error is explicit."""

import argparse
import pickle
import re

import pytest
import torch

import endofm
from endofm.models import CheckpointError, load_checkpoint, safe_load


def _layouts(sd):
    head = {"mlp.0.weight": torch.zeros(4, 96)}
    return {
        "released_pretrain": {"teacher": {**{f"backbone.{k}": v for k, v in sd.items()},
                                          **{f"head.{k}": v for k, v in head.items()}},
                              "epoch": 3, "args": argparse.Namespace(arch="timesformer")},
        "released_pretrain_ddp_student": {"student": {f"module.backbone.{k}": v
                                                      for k, v in sd.items()}},
        "svt_kinetics": {**{f"backbone.{k}": v for k, v in sd.items()},
                         **{f"head.{k}": v for k, v in head.items()}},
        "timesformer": {"model_state": {**{f"model.{k}": v for k, v in sd.items()},
                                        "model.head.weight": torch.zeros(400, 96)}},
        "plain": dict(sd),
        "plain_ddp": {f"module.{k}": v for k, v in sd.items()},
    }


@pytest.mark.parametrize("name", list(_layouts({})))
def test_each_layout_loads_to_reference_outputs(tmp_path, reference, teacher_backbone, name):
    path = tmp_path / f"{name}.pth"
    torch.save(_layouts(teacher_backbone)[name], path)
    ckpt = load_checkpoint(path)
    assert ckpt.layout == name.removesuffix("_ddp_student").removesuffix("_ddp")
    model = endofm.create_model("endofm_vit_base_patch16", pretrained=path, num_heads=4).eval()
    with torch.no_grad():
        out = model(reference["inputs"][1])
    torch.testing.assert_close(out, reference["outputs"]["cls_1"], atol=1e-4, rtol=0)


def test_released_pretrain_reports_head_and_ignored(reference):
    ckpt = load_checkpoint(reference["pretrain"])
    assert ckpt.layout == "released_pretrain" and ckpt.extra["source"] == "teacher"
    assert "last_layer.weight_v" in ckpt.head_state_dict
    assert set(ckpt.ignored) == {"student", "epoch", "args", "dino_loss"}
    assert ckpt.extra["center"].shape[0] == 1


def test_own_directory_round_trip(tmp_path, reference):
    model = endofm.create_model("endofm_vit_base_patch16", pretrained=reference["pretrain"],
                                num_heads=4).eval()
    endofm.save_pretrained(model, tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"model.safetensors", "config.json",
                                                            "README.md"}
    again = endofm.create_model("endofm_vit_base_patch16", pretrained=tmp_path / "m").eval()
    assert again.num_heads == 4
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_loading_without_random_init_draws_nothing_and_leaves_nothing_uninitialised(
        tmp_path, reference):
    """``random_init=False`` builds the model on the meta device: every tensor is the
    checkpoint's, a mask token the checkpoint lacks is its initial zeros, and the random stream
    is untouched; the default draws the init first, as the release's fine-tuning does."""
    plain = endofm.create_model("endofm_vit_base_patch16", pretrained=reference["pretrain"],
                                num_heads=4)
    endofm.save_pretrained(plain, tmp_path / "m")
    state = torch.random.get_rng_state()
    with pytest.warns(UserWarning, match="mask_token only in the model"):
        model = endofm.create_model("endofm_vit_base_patch16", pretrained=tmp_path / "m",
                                    use_mask_token=True, random_init=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(model.mask_token, torch.zeros(1, 1, model.embed_dim))
    expected = plain.state_dict()
    for key, value in model.state_dict().items():
        if key != "mask_token":
            assert torch.equal(value, expected[key]), key
    assert not list(model.buffers()) and not any(p.is_meta for p in model.parameters())
    again = endofm.create_model("endofm_vit_base_patch16", pretrained=tmp_path / "m")
    assert not torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(v, expected[k]) for k, v in again.state_dict().items())


def test_extraction_loads_its_backbone_without_random_init(tmp_path, reference):
    from endofm.inference import load_backbone

    state = torch.random.get_rng_state()
    model = load_backbone(reference["pretrain"], num_heads=4)
    assert torch.equal(torch.random.get_rng_state(), state) and not model.training


def test_other_size_and_frames_are_adapted_with_warning(reference):
    with pytest.warns(UserWarning) as record:
        model = endofm.create_model("endofm_vit_base_patch16", pretrained=reference["pretrain"],
                                    num_heads=4, img_size=32, num_frames=2)
    messages = " ".join(str(w.message) for w in record)
    assert "resized pos_embed from (1, 17, 96) to (1, 5, 96)" in messages
    assert "resized time_embed from (1, 4, 96) to (1, 2, 96)" in messages
    assert model.pos_embed.shape == (1, 5, 96) and model.time_embed.shape == (1, 2, 96)
    # nearest resizing = the release's dynamic encoding: same output as the original model
    model.eval()
    with torch.no_grad():
        out = model(reference["inputs"][2])
    torch.testing.assert_close(out, reference["outputs"]["cls_2"], atol=1e-4, rtol=0)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(tmp_path / "nope.pth")


def test_shape_mismatch_names_keys_and_shapes(reference):
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.qkv\.weight.*\(288, 96\)"):
        endofm.create_model("endofm_vit_base_patch16", pretrained=reference["pretrain"],
                            embed_dim=192, num_heads=3)


def test_missing_and_unexpected_keys_are_listed(tmp_path, teacher_backbone):
    sd = {k: v for k, v in teacher_backbone.items() if k != "norm.weight"}
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"missing key\(s\): norm.weight.*extra.weight"):
        endofm.create_model("endofm_vit_base_patch16", pretrained=tmp_path / "broken.pth",
                            num_heads=4)


def test_unknown_layout(tmp_path):
    torch.save({"something": torch.zeros(2)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="unrecognised checkpoint layout.*something"):
        load_checkpoint(tmp_path / "x.pth")


def test_corrupt_file(tmp_path):
    (tmp_path / "c.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint.*c.pth"):
        load_checkpoint(tmp_path / "c.pth")


def test_unreadable_files_say_why(tmp_path):
    (tmp_path / "text.pth").write_text("hello\n")
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save({"w": torch.zeros(1000)}, tmp_path / "whole.pth")
    data = (tmp_path / "whole.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    expected = {"text.pth": "not a PyTorch checkpoint", "empty.pth": "the file is empty",
                "cut.pth": "truncated"}
    for name, reason in expected.items():
        with pytest.raises(CheckpointError) as err:
            safe_load(tmp_path / name)
        assert str(err.value).startswith(f"cannot read checkpoint {tmp_path / name}: ")
        assert reason in str(err.value), str(err.value)


def test_refusal_never_suggests_weights_only_false(tmp_path):
    import os

    class System:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"x": System()}, tmp_path / "s.pth")
    with pytest.raises(CheckpointError) as err:
        safe_load(tmp_path / "s.pth")
    assert re.search(r"it pickles '\w+\.system', which is not on the allow-list",
                     str(err.value)), str(err.value)
    assert "refusing to run code" in str(err.value)
    assert "weights_only" not in str(err.value)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_arbitrary_pickled_code_is_refused(tmp_path, writer):
    path = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save({"teacher": Evil()}, path)
    else:
        with open(path, "wb") as f:
            pickle.dump({"teacher": Evil()}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"evil.pth.*pickles 'print'.*allow-list"):
        safe_load(path)


def test_classifier_from_pretrain_checkpoint_is_refused(reference):
    with pytest.raises(CheckpointError, match="not a classifier checkpoint"):
        endofm.load_classifier(reference["pretrain"])


def test_directory_without_weights(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(FileNotFoundError, match="model.safetensors missing\\)$"):
        load_checkpoint(tmp_path / "d")


@pytest.mark.parametrize("inner", ["best", "backbone"])
def test_a_run_folder_names_its_model(tmp_path, inner):
    """Given the ``--output`` of ``endofm finetune`` (``best/``) or ``endofm pretrain``
    (``backbone/``), the error names the model folder inside."""
    model = tmp_path / "run" / inner
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"")
    (model / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=f"run folder, whose model is .*run/{inner}$"):
        load_checkpoint(tmp_path / "run")


def test_classifier_round_trip(tmp_path, reference):
    clf = endofm.load_classifier(reference["polypdiag"], num_heads=4)
    clf.save_pretrained(tmp_path / "clf")
    again = endofm.load_classifier(tmp_path / "clf")
    with torch.no_grad():
        torch.testing.assert_close(again(reference["inputs"][0]),
                                   reference["outputs"]["classifier_logits_0"], atol=1e-4, rtol=0)


def test_load_classifier_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="clf.pth"):
        endofm.load_classifier(tmp_path / "clf.pth")


def test_classifier_directory_gives_backbone_to_create_model(tmp_path, reference):
    clf = endofm.load_classifier(reference["polypdiag"], num_heads=4)
    clf.save_pretrained(tmp_path / "clf")
    backbone = endofm.create_model("endofm_vit_base_patch16", pretrained=tmp_path / "clf").eval()
    x = reference["inputs"][0]
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), clf.backbone(x))


@pytest.mark.parametrize("attention_type", ["divided_space_time", "space_only",
                                            "joint_space_time"])
def test_attention_type_survives_plain_state_dict(tmp_path, attention_type):
    model = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, depth=2, num_frames=2,
                                attention_type=attention_type)
    torch.save(model.state_dict(), tmp_path / "sd.pth")
    ckpt = load_checkpoint(tmp_path / "sd.pth")
    assert ckpt.config["attention_type"] == attention_type
    again = endofm.create_model("endofm_vit_tiny_patch16", pretrained=tmp_path / "sd.pth")
    assert again.attention_type == attention_type and again.num_heads == 3


def test_classification_head_inside_backbone_is_ignored(tmp_path, reference, teacher_backbone):
    sd = {**teacher_backbone, "head.weight": torch.zeros(400, 96), "head.bias": torch.zeros(400)}
    torch.save({"teacher": {f"backbone.{k}": v for k, v in sd.items()}}, tmp_path / "h.pth")
    ckpt = load_checkpoint(tmp_path / "h.pth")
    assert {"backbone head.weight", "backbone head.bias"} <= set(ckpt.ignored)
    model = endofm.create_model("endofm_vit_base_patch16", pretrained=tmp_path / "h.pth",
                                num_heads=4).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(reference["inputs"][0]), reference["outputs"]["cls_0"],
                                   atol=1e-4, rtol=0)


def test_directory_with_foreign_config(tmp_path):
    model = endofm.create_model("endofm_vit_tiny_patch16", img_size=32, depth=1, num_frames=2)
    endofm.save_pretrained(model, tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"hidden_size": 768}')
    with pytest.raises(CheckpointError, match=r"config.json: no 'backbone' config"):
        load_checkpoint(tmp_path / "m")
