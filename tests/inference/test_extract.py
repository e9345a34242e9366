import csv
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch.multiprocessing as mp

from endofm.cli.main import main
from endofm.data import write_video
from endofm.inference import VideoEncoder
from tests.tiny_inputs import moving_frames


def extract_args(ckpt: Path, inputs: list[Path], out: Path, *extra: str) -> list[str]:
    return ["extract", "--checkpoint", str(ckpt), *map(str, inputs), "--output", str(out),
            "--num-frames", "4", "--frame-step", "2", "--stride", "8", "--workers", "0",
            "--device", "cpu", "--precision", "fp32", "--quiet", *extra]


def read_index(out: Path) -> list[dict]:
    with open(out / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_extract_writes_features_index_and_run_json(tiny_backbone_dir, videos, tmp_path):
    out = tmp_path / "out"
    assert main(extract_args(tiny_backbone_dir, [videos], out, "--batch-size", "3")) == 0
    a, b = np.load(out / "a.npy"), np.load(out / "sub" / "b.npy")
    assert a.shape == (7, 96) and b.shape == (3, 96) and a.dtype == np.float32
    encoder = VideoEncoder(tiny_backbone_dir, 4, 2, 8, device="cpu", precision="fp32")
    np.testing.assert_allclose(a, encoder.encode(videos / "a.mp4")[0], atol=1e-6)
    rows = read_index(out)
    assert [(r["video"], int(r["window"])) for r in rows] == (
        [("a.mp4", k) for k in range(7)] + [("sub/b.mkv", k) for k in range(3)])
    last = rows[6]
    assert (last["first_frame"], last["last_frame"], last["partial"]) == ("48", "49", "1")
    assert float(rows[8]["start_s"]) == pytest.approx(0.8)  # b.mkv is 10 fps
    run = json.loads((out / "run.json").read_text())
    assert run["finished"] and run["errors"] == [] and run["settings"]["frame_step"] == "2"


def test_rerun_skips_finished_videos_and_a_changed_setting_is_refused(
        tiny_backbone_dir, videos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(extract_args(tiny_backbone_dir, [videos], out)) == 0
    (out / "a.npy").unlink()  # as if the run had stopped before a.mp4 finished
    mtime_b = (out / "sub" / "b.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert main(extract_args(tiny_backbone_dir, [videos], out)) == 0
    assert "1 videos processed, 1 already done" in capsys.readouterr().out
    assert (out / "sub" / "b.npy").stat().st_mtime_ns == mtime_b
    assert np.load(out / "a.npy").shape == (7, 96) and len(read_index(out)) == 10
    assert main(extract_args(tiny_backbone_dir, [videos], out, "--features", "mean_patch")) == 1
    assert "other settings (features: 'cls' -> 'mean_patch')" in capsys.readouterr().err


def test_a_damaged_or_short_feature_file_is_extracted_again(tiny_backbone_dir, videos,
                                                             tmp_path, capsys):
    """"Already done" is checked against the file: a truncated ``.npy`` (unreadable) or one
    holding fewer windows than recorded is extracted again, with a note naming it."""
    out = tmp_path / "out"
    assert main(extract_args(tiny_backbone_dir, [videos], out)) == 0
    good = np.load(out / "a.npy")
    (out / "a.npy").write_bytes((out / "a.npy").read_bytes()[:100])
    np.save(out / "sub" / "b.npy", np.load(out / "sub" / "b.npy")[:2])
    capsys.readouterr()
    assert main(extract_args(tiny_backbone_dir, [videos], out)) == 0
    captured = capsys.readouterr()
    assert "2 videos processed, 0 already done" in captured.out
    assert f"{out / 'a.npy'}: unreadable (" in captured.err
    assert f"{out / 'sub' / 'b.npy'}: 2 windows where 3 were recorded" in captured.err
    np.testing.assert_array_equal(np.load(out / "a.npy"), good)
    assert np.load(out / "sub" / "b.npy").shape == (3, 96)


def test_truncated_video_keeps_readable_windows_and_is_reported(
        tiny_backbone_dir, videos, tmp_path, capsys):
    data = write_video(tmp_path / "full.mkv", moving_frames(60), fps=24).read_bytes()
    (videos / "cut.mkv").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert main(extract_args(tiny_backbone_dir, [videos], out, "--dtype", "float16")) == 1
    assert "1 with errors" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    (error,) = run["errors"]
    assert error["path"].endswith("cut.mkv") and "could not be decoded" in error["reason"]
    cut = np.load(out / "cut.npy")
    kept = [r for r in read_index(out) if r["video"] == "cut.mkv"]
    assert cut.dtype == np.float16 and 1 <= len(cut) == len(kept) < 8
    assert error["failed_windows"] == 8 - len(kept)
    assert np.load(out / "a.npy").shape == (7, 96)  # the other videos went on


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, args: list[str]) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from endofm.utils.distributed import cleanup_distributed

    assert main(args) == 0
    cleanup_distributed()


def test_two_ranks_shard_videos_and_match_a_single_process_run(tiny_backbone_dir, videos,
                                                               tmp_path):
    write_video(videos / "c.mp4", moving_frames(20, seed=2), fps=30)
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert main(extract_args(tiny_backbone_dir, [videos], single)) == 0
    args = extract_args(tiny_backbone_dir, [videos], sharded)
    mp.spawn(_rank_main, args=(2, _free_port(), args), nprocs=2)
    assert (single / "index.csv").read_text() == (sharded / "index.csv").read_text()
    for name in ("a.npy", "c.npy", "sub/b.npy"):
        np.testing.assert_array_equal(np.load(single / name), np.load(sharded / name))


def test_a_video_whose_run_recorded_an_error_is_extracted_again(tiny_backbone_dir, videos,
                                                                tmp_path, capsys):
    """A video that failed (here: cut short) is not "already done": once the file is whole
    again, the same command extracts it in full and the run ends without errors; the videos
    that had finished are left as they are."""
    whole = write_video(tmp_path / "whole.mkv", moving_frames(60), fps=24).read_bytes()
    (videos / "cut.mkv").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out"
    assert main(extract_args(tiny_backbone_dir, [videos], out)) == 1
    assert json.loads((out / "run.json").read_text())["errors"]
    assert len(np.load(out / "cut.npy")) < 8
    finished = (out / "a.npy").stat().st_mtime_ns
    (videos / "cut.mkv").write_bytes(whole)
    assert main(extract_args(tiny_backbone_dir, [videos], out)) == 0, capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    assert run["finished"] and run["errors"] == []
    assert np.load(out / "cut.npy").shape == (8, 96)
    assert [r for r in read_index(out) if r["video"] == "cut.mkv"][-1]["window"] == "7"
    assert (out / "a.npy").stat().st_mtime_ns == finished


def test_run_json_records_the_weights_sha256_and_changed_weights_are_refused(
        tiny_backbone_dir, videos, tmp_path, capsys):
    import hashlib
    import shutil

    ckpt = Path(shutil.copytree(tiny_backbone_dir, tmp_path / "ckpt"))
    weights = ckpt / "model.safetensors"
    out = tmp_path / "out"
    assert main(extract_args(ckpt, [videos / "a.mp4"], out)) == 0
    (recorded,) = json.loads((out / "run.json").read_text())["weights"]
    assert recorded["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert recorded["size"] == weights.stat().st_size
    capsys.readouterr()
    assert main(extract_args(ckpt, [videos / "a.mp4"], out)) == 0  # same weights: a re-run
    assert "0 videos processed, 1 already done" in capsys.readouterr().out
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1  # the last byte of the last tensor: still a readable file, other weights
    weights.write_bytes(bytes(blob))
    assert main(extract_args(ckpt, [videos / "a.mp4"], out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"other weights ({ckpt.resolve()}: sha256" in err[0]
