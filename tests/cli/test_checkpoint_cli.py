import json
from pathlib import Path

import torch

import endofm
from endofm.cli.main import main

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"


def test_info_json(capsys):
    assert main(["info", str(ASSETS / "endo_fm_tiny.pth"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "released_pretrain"
    assert report["config"]["embed_dim"] == 96 and report["config"]["depth"] == 2
    assert report["backbone_parameters"] == 393_312
    assert "student" in report["ignored"]
    # width 96 is no named config's: the head count is unknown, never guessed
    assert report["num_heads_stored"] is False and report["num_heads"] is None
    assert "--num-heads" in report["num_heads_source"]


def test_info_text_and_missing_file(capsys, tmp_path):
    assert main(["info", str(ASSETS / "polypdiag_tiny.pth")]) == 0
    assert "polypdiag" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "missing.pth")]) == 1
    assert "missing.pth" in capsys.readouterr().err


def test_info_names_what_an_endofm_directory_holds(tmp_path, capsys):
    classifier = endofm.load_classifier(ASSETS / "polypdiag_tiny.pth", num_heads=4)
    classifier.save_pretrained(tmp_path / "clf")
    assert main(["info", str(tmp_path / "clf")]) == 0
    assert ("  model:       classifier (task classification), 2 classes\n"
            in capsys.readouterr().out)
    assert main(["info", str(tmp_path / "clf"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["kind"], report["task"], report["num_classes"]) == (
        "classifier", "classification", 2)
    assert main(["info", str(ASSETS / "endo_fm_tiny.pth")]) == 0
    assert "model:" not in capsys.readouterr().out  # a released file records no kind


def test_convert_then_load(tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert", str(ASSETS / "endo_fm_tiny.pth"), "--out", str(out),
                 "--num-heads", "4"]) == 0
    assert "num_heads 4" in capsys.readouterr().out
    direct = endofm.create_model("endofm_vit_base_patch16", pretrained=ASSETS / "endo_fm_tiny.pth",
                                 num_heads=4)
    converted = endofm.create_model("endofm_vit_base_patch16", pretrained=out)
    assert main(["info", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "endofm_dir" and report["num_heads"] == 4
    assert (report["kind"], report["num_classes"]) == ("backbone", None)
    for (k, a), (_, b) in zip(direct.state_dict().items(), converted.state_dict().items(),
                              strict=True):
        assert torch.equal(a, b), k


def test_info_on_a_phase_model_shows_its_phases_and_the_backbone_in_its_folder(tmp_path, capsys):
    from tests.tiny_inputs import tiny_phase_model

    folder = tiny_phase_model(tmp_path / "phase")
    assert main(["info", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["kind"], report["task"]) == ("phase_model", "phase")
    assert report["class_names"] == ["idle", "cut", "close"] and report["num_classes"] == 3
    temporal = endofm.load_task_model(folder).model
    assert report["parameters"] == sum(p.numel() for p in temporal.state_dict().values())
    assert report["backbone"]["config"]["embed_dim"] == temporal.in_dim
    assert main(["info", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "  model:       phase_model (task phase), 3 classes: idle, cut, close\n" in text
    assert f"  backbone:    {folder / 'backbone'} (layout endofm_dir)\n" in text
    for path in (folder / "backbone").iterdir():
        path.unlink()
    (folder / "backbone").rmdir()
    assert main(["info", str(folder)]) == 0
    assert "backbone:    not in the folder" in capsys.readouterr().out
