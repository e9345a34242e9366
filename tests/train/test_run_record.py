import hashlib
from dataclasses import dataclass, field

import pytest

from endofm.config import load_config
from endofm.train.run_record import (
    RunMismatchError,
    differing_keys,
    find_record,
    fingerprint,
    read_record,
    record_origin,
    run_inputs,
    run_origin,
    settings_conflicts,
    start_run,
    trained_settings,
)


@dataclass
class Data:
    img_size: int = 64


@dataclass
class Train:
    num_workers: int = 0


@dataclass
class Optim:
    lr: float = 0.1


@dataclass
class Schema:
    data: Data = field(default_factory=Data)
    optim: Optim = field(default_factory=Optim)
    train: Train = field(default_factory=Train)


def test_fingerprint_hashes_the_whole_file(tmp_path):
    blob = bytes(range(256)) * 8192 + b"tail"  # 2 MiB + 4 bytes
    (tmp_path / "w.pth").write_bytes(blob)
    print_ = fingerprint(tmp_path / "w.pth")
    assert print_["size"] == len(blob)
    assert print_["sha256"] == hashlib.sha256(blob).hexdigest()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"abc")
    assert fingerprint(tmp_path / "model")["size"] == 3


def test_record_then_refuse_other_settings_unless_restart(tmp_path):
    (tmp_path / "w.pth").write_bytes(b"weights")
    inputs = run_inputs(tmp_path, tmp_path / "w.pth")
    start_run(load_config(Schema), tmp_path / "run", inputs, state_files=["last.pth"])
    record = read_record(tmp_path / "run" / "config.yaml")
    assert record["inputs"]["pretrained"]["size"] == 7
    assert record["inputs"]["data"] == str(tmp_path.resolve())
    # same settings (a worker count may change): resumes
    start_run(load_config(Schema, None, ["train.num_workers=4"]), tmp_path / "run", inputs)
    (tmp_path / "run" / "last.pth").write_bytes(b"state")
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\n')
    changed = load_config(Schema, None, ["optim.lr=0.5", "data.img_size=32"])
    with pytest.raises(RunMismatchError) as err:
        start_run(changed, tmp_path / "run", inputs, state_files=["last.pth"])
    message = str(err.value)
    assert "data.img_size: 64 → 32" in message and "optim.lr: 0.1 → 0.5" in message
    assert "--restart" in message and "num_workers" not in message
    other_data = run_inputs(tmp_path / "elsewhere", None)
    with pytest.raises(RunMismatchError, match="inputs.data"):
        start_run(load_config(Schema), tmp_path / "run", other_data)
    start_run(changed, tmp_path / "run", inputs, restart=True, state_files=["last.pth"])
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml"]
    assert read_record(tmp_path / "run" / "config.yaml")["optim"]["lr"] == 0.5


@dataclass
class OtherCommand:
    """Another command's settings: a section ``Schema`` lacks."""
    optim: Optim = field(default_factory=Optim)
    views: Data = field(default_factory=Data)


@pytest.mark.parametrize("restart", [False, True])
def test_another_commands_run_folder_is_refused_even_with_restart(tmp_path, restart):
    inputs = run_inputs(tmp_path, None)
    start_run(load_config(OtherCommand), tmp_path / "run", inputs)
    (tmp_path / "run" / "last.pth").write_bytes(b"the other run's state")
    with pytest.raises(RunMismatchError) as err:
        start_run(load_config(Schema), tmp_path / "run", inputs, restart=restart,
                  state_files=["last.pth"])
    assert str(err.value) == (f"{tmp_path / 'run'} holds another command's run (its config.yaml "
                              "has sections views, which this command's settings lack); use "
                              "another --output (--restart would mix the two runs' files)")
    assert (tmp_path / "run" / "last.pth").read_bytes() == b"the other run's state"
    assert "views" in read_record(tmp_path / "run" / "config.yaml")


def test_differing_keys_ignores_settings_added_since():
    assert differing_keys({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == []
    assert differing_keys({"a": {"b": 1}}, {"a": {"b": 2}}) == ["a.b: 1 → 2"]


def test_find_record_and_conflicts(tmp_path):
    start_run(load_config(Schema), tmp_path / "run", run_inputs(tmp_path, None))
    (tmp_path / "run" / "last.pth").write_bytes(b"")
    assert find_record(tmp_path / "run" / "last.pth") == tmp_path / "run" / "config.yaml"
    (tmp_path / "alien").mkdir()
    (tmp_path / "alien" / "config.yaml").write_text("something: else\n")
    assert find_record(tmp_path / "alien" / "w.pth") is None
    trained = {"data": {"img_size": 64}, "optim": {"lr": 0.1}}
    assert settings_conflicts(trained, {"data.img_size": 64, "optim.lr": 9.0}) == []
    assert settings_conflicts(trained, {"data.img_size": 224}) == [
        "data.img_size: trained with 64, given 224"]


def test_a_record_with_the_first_mibs_sha256_resumes_and_refuses_only_other_bytes(tmp_path):
    """Records written before the whole file's SHA-256 keep ``sha256_first_mib``: a resume
    compares that digest (the file's first MiB), not the key's absence."""
    blob = bytes(range(256)) * 8192 + b"tail"  # 2 MiB + 4 bytes
    weights = tmp_path / "w.pth"
    weights.write_bytes(blob)
    inputs = run_inputs(tmp_path, weights)
    old = {**inputs, "pretrained": {"path": str(weights.resolve()), "size": len(blob),
                                    "sha256_first_mib": hashlib.sha256(blob[:1 << 20]).hexdigest()}}
    start_run(load_config(Schema), tmp_path / "run", old)
    start_run(load_config(Schema), tmp_path / "run", inputs)  # same bytes: resumes
    assert read_record(tmp_path / "run" / "config.yaml")["inputs"]["pretrained"] == \
        inputs["pretrained"]
    start_run(load_config(Schema), tmp_path / "other", old)
    weights.write_bytes(b"X" + blob[1:])  # same size, other first byte
    with pytest.raises(RunMismatchError, match=r"inputs\.pretrained\.sha256: 'other bytes "
                                               r"\(first MiB [0-9a-f]{12}…\)'") as err:
        start_run(load_config(Schema), tmp_path / "other", run_inputs(tmp_path, weights))
    assert "sha256_first_mib" not in str(err.value)


def test_a_run_records_its_command_and_task(tmp_path):
    run = tmp_path / "run"
    start_run(load_config(Schema), run, {}, origin=run_origin("finetune", "segmentation"))
    assert record_origin(run / "config.yaml") == {"command": "finetune", "task": "segmentation"}
    assert "origin" not in trained_settings(run / "config.yaml")
    start_run(load_config(Schema), run, {}, origin=run_origin("finetune", "segmentation"))


@pytest.mark.parametrize("restart", [False, True])
def test_a_folder_of_another_task_or_command_is_refused_even_with_restart(tmp_path, restart):
    run = tmp_path / "run"
    start_run(load_config(Schema), run, {}, origin=run_origin("finetune", "segmentation"))
    (run / "last.pth").write_bytes(b"state")
    for other, named in ((run_origin("finetune", "detection"), "endofm finetune detection"),
                         (run_origin("pretrain"), "endofm pretrain")):
        with pytest.raises(RunMismatchError, match=f"holds a run of `endofm finetune "
                                                   f"segmentation`, not of `{named}`"):
            start_run(load_config(Schema), run, {}, restart, ["last.pth"], origin=other)
    assert (run / "last.pth").is_file()  # nothing deleted


def test_a_folder_recorded_before_origins_resumes_and_gains_one(tmp_path):
    run = tmp_path / "run"
    start_run(load_config(Schema), run, {})  # as the previous version wrote it: no origin
    assert record_origin(run / "config.yaml") is None
    start_run(load_config(Schema), run, {}, origin=run_origin("finetune", "classification"))
    assert record_origin(run / "config.yaml") == {"command": "finetune",
                                                  "task": "classification"}
