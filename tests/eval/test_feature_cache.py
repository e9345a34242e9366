"""``endofm.eval.features.cached``: reuse, and recovery from a damaged cache file."""

import logging

import numpy as np

from endofm.eval.features import cached


def test_a_damaged_cache_file_is_computed_again_and_replaced(tmp_path, caplog):
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    feats, hit = cached(tmp_path, "k", compute)
    assert not hit and len(calls) == 1
    again, hit = cached(tmp_path, "k", compute)
    assert hit and len(calls) == 1 and np.array_equal(again, feats)
    path = tmp_path / "k.npy"
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with caplog.at_level(logging.WARNING, logger="endofm"):
        recovered, hit = cached(tmp_path, "k", compute)
    assert not hit and len(calls) == 2 and np.array_equal(recovered, feats)
    assert f"{path}: unreadable feature cache file (" in caplog.text
    assert np.array_equal(np.load(path), feats)  # replaced by a good file
