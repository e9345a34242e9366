"""``hf-hub:`` names resolve through a local hub cache built in a temporary folder (the
``huggingface_hub`` cache layout: ``models--OWNER--NAME/refs/REV`` holding a commit,
``snapshots/COMMIT/FILE``), with ``HF_HUB_OFFLINE=1``: nothing touches the network."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import endofm
from endofm.cli.main import main
from endofm.models import load_checkpoint
from endofm.models.hub import (
    HubName,
    HubWeightsNotFound,
    parse_hub_name,
    resolve_weights,
    weights_fingerprint,
)
from endofm.train.run_record import run_inputs

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"
TINY = dict(img_size=32, num_frames=2, embed_dim=96, depth=1, num_heads=4)


def cache_snapshot(cache: Path, repo: str, revision: str = "main",
                   commit: str = "0123456789abcdef0123456789abcdef01234567") -> Path:
    """The snapshot folder of ``repo`` at ``commit``, with ``refs/revision`` pointing at it."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / revision).write_text(commit)
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf_home" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return endofm.create_model("endofm_vit_tiny_patch16", **TINY).eval()


def test_hub_names_parse():
    assert parse_hub_name("hf-hub:owner/name") == HubName("owner/name", None, None)
    assert parse_hub_name("hf-hub:owner/name/sub/endo_fm.pth@v1") == \
        HubName("owner/name", "sub/endo_fm.pth", "v1")
    assert str(parse_hub_name("hf-hub:owner/name/f.pth@v1")) == "hf-hub:owner/name/f.pth@v1"
    with pytest.raises(ValueError, match="hf-hub:OWNER/NAME"):
        parse_hub_name("hf-hub:just-a-name")
    assert resolve_weights("local/endo_fm.pth") == Path("local/endo_fm.pth")


def test_a_cached_endofm_folder_loads_offline(hub_cache: Path, tiny_model: torch.nn.Module):
    endofm.save_pretrained(tiny_model, cache_snapshot(hub_cache, "owner/tiny"))
    loaded = endofm.create_model("endofm_vit_tiny_patch16", pretrained="hf-hub:owner/tiny")
    for a, b in zip(tiny_model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_cached_released_file_and_a_revision_load_offline(hub_cache: Path):
    other = "fedcba9876543210fedcba9876543210fedcba98"
    shutil.copy(ASSETS / "endo_fm_tiny.pth",
                cache_snapshot(hub_cache, "owner/release", "v1", other) / "endo_fm.pth")
    ckpt = load_checkpoint("hf-hub:owner/release/endo_fm.pth@v1")
    assert ckpt.layout == "released_pretrain"
    assert ckpt.path == hub_cache / "models--owner--release" / "snapshots" / other / "endo_fm.pth"
    with pytest.raises(HubWeightsNotFound, match="endo_fm.pth is not in the hub cache"):
        load_checkpoint("hf-hub:owner/release/endo_fm.pth")  # no refs/main


def test_a_missing_file_is_one_line_saying_what_to_download(hub_cache: Path, capsys):
    with pytest.raises(HubWeightsNotFound) as err:
        resolve_weights("hf-hub:owner/missing")
    message = str(err.value)
    assert "\n" not in message
    assert "hf download owner/missing model.safetensors config.json" in message
    assert str(hub_cache) in message and "HF_HUB_OFFLINE=1" in message
    assert main(["info", "hf-hub:owner/missing"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("endofm: error:") and "hf download" in lines[0]


def test_the_run_record_keeps_the_hub_name_and_the_whole_files_sha256(
        hub_cache: Path, tiny_model: torch.nn.Module, tmp_path: Path):
    snapshot = endofm.save_pretrained(tiny_model, cache_snapshot(hub_cache, "owner/tiny"))
    record = run_inputs(tmp_path, "hf-hub:owner/tiny")["pretrained"]
    weights = snapshot / "model.safetensors"
    assert record == {"path": str(snapshot.resolve()), "size": weights.stat().st_size,
                      "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                      "name": "hf-hub:owner/tiny"}
    assert weights_fingerprint(weights)["sha256"] == record["sha256"]


def test_a_hub_backbone_goes_through_the_command_line(hub_cache: Path, tiny_model, capsys):
    endofm.save_pretrained(tiny_model, cache_snapshot(hub_cache, "owner/tiny"))
    assert main(["info", "hf-hub:owner/tiny", "--json"]) == 0
    assert '"layout": "endofm_dir"' in capsys.readouterr().out


def card_header(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_save_pretrained_writes_a_model_card_the_hub_reads(tmp_path: Path, tiny_model):
    from huggingface_hub import ModelCard

    out = endofm.save_pretrained(tiny_model, tmp_path / "m", license="apache-2.0",
                                 datasets=["owner/videos"])
    header = card_header(out)
    assert header["license"] == "apache-2.0" and header["library_name"] == "endofm"
    assert header["pipeline_tag"] == "feature-extraction"
    assert header["datasets"] == ["owner/videos"] and "endoscopy" in header["tags"]
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "apache-2.0"
    assert "width 96, depth 1 and 4 heads" in card.text
    assert 'pretrained="hf-hub:OWNER/NAME"' in card.text


def test_convert_and_a_classifier_write_their_cards(tmp_path: Path):
    assert main(["convert", str(ASSETS / "endo_fm_tiny.pth"), "--out", str(tmp_path / "c"),
                 "--num-heads", "4", "--dataset", "endoscopy videos"]) == 0
    header = card_header(tmp_path / "c")
    assert header["license"] == "other" and header["datasets"] == ["endoscopy videos"]
    assert "set `license:`" in (tmp_path / "c" / "README.md").read_text()
    endofm.load_classifier(ASSETS / "polypdiag_tiny.pth", num_heads=4).save_pretrained(
        tmp_path / "clf")
    assert card_header(tmp_path / "clf")["pipeline_tag"] == "video-classification"
