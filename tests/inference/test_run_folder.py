"""The output-folder guard's weights comparison, against records of today's endofm and of an
older one (which kept the SHA-256 of the weights file's first MiB only)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from endofm.inference.run_folder import changed_weights, weights_record

MIB = 1 << 20


def older_record(path: Path, blob: bytes) -> dict:
    """The weights record an endofm before the whole-file SHA-256 wrote."""
    return {"path": str(path.resolve()), "size": len(blob),
            "sha256_first_mib": hashlib.sha256(blob[:MIB]).hexdigest()}


def test_an_older_record_is_compared_by_its_first_mibs_sha256(tmp_path):
    blob = bytes(range(256)) * 8192 + b"tail"  # 2 MiB + 4 bytes
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(blob)
    old = [older_record(weights, blob)]
    assert changed_weights(old, weights_record([weights])) is None
    assert changed_weights(old, weights_record([tmp_path])) is None  # the folder: same file
    weights.write_bytes(b"X" + blob[1:])
    changed = changed_weights(old, weights_record([weights]))
    assert changed is not None and changed.startswith(f"{weights.resolve()}: sha256 other")


def test_a_record_with_the_whole_files_sha256_is_compared_by_it(tmp_path):
    blob = bytes(range(256)) * 8192 + b"tail"
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(blob)
    old = weights_record([weights])
    assert changed_weights(old, weights_record([weights])) is None
    weights.write_bytes(blob[:-1] + b"X")  # past the first MiB: the whole file's digest sees it
    changed = changed_weights(old, weights_record([weights]))
    assert changed is not None and f"sha256 {old[0]['sha256'][:12]}…" in changed
