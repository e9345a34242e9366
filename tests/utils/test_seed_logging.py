import random
import time

import numpy as np
import pytest
import torch

from endofm.utils.figures import save_figure
from endofm.utils.logging import MetricLogger, plot_curves, read_jsonl
from endofm.utils.seed import get_rng_state, seed_everything, set_rng_state


def test_rng_state_round_trip_reproduces_draws():
    seed_everything(3)
    state = get_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(2))
    set_rng_state(state)
    second = (random.random(), np.random.rand(), torch.rand(2))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_metric_logger_writes_jsonl_tensorboard_and_plot(tmp_path):
    logger = MetricLogger(tmp_path)
    for step in range(3):
        logger.log({"loss": 1.0 / (step + 1), "phase": "train"}, step=step)
    logger.close()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert rows[2]["loss"] == 1.0 / 3
    assert any((tmp_path / "tensorboard").iterdir())
    png = plot_curves(rows, ["loss"], tmp_path / "loss.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_curve_of_nothing_logged_says_so_without_a_warning(tmp_path, recwarn, monkeypatch):
    """A run too short to log its per-step loss has only epoch means: the plot shows them, and
    a figure of no logged series is written without matplotlib's empty-legend warning."""
    import endofm.utils.logging as logging_module

    drawn = []

    def keep(fig, path, **kwargs):
        ax = fig.axes[0]
        drawn.append([line.get_label() for line in ax.get_lines()]
                     + [text.get_text() for text in ax.texts])
        return save_figure(fig, path, **kwargs)

    monkeypatch.setattr(logging_module, "save_figure", keep)
    rows = [{"step": 2, "train/loss_epoch": 2.4}, {"step": 4, "train/loss_epoch": 2.1}]
    plot_curves(rows, ["train/loss", "train/loss_epoch"], tmp_path / "a.png")
    png = plot_curves(rows, ["train/loss"], tmp_path / "b.png")
    assert drawn == [["train/loss_epoch"], ["no train/loss logged"]]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert not [w for w in recwarn if "legend" in str(w.message)]


def test_rewind_drops_rows_after_the_checkpoint_and_a_torn_line(tmp_path):
    logger = MetricLogger(tmp_path, tensorboard=False)
    for step in range(6):
        logger.log({"loss": float(step)}, step=step)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "lo')  # killed in the middle of a write
    resumed = MetricLogger(tmp_path, tensorboard=False)
    with pytest.warns(UserWarning, match=r"metrics\.jsonl: dropped a torn last line"):
        resumed.rewind(4)
    resumed.log({"loss": 40.0}, step=4)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["loss"]) for r in rows] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0),
                                                      (4, 40.0)]


def test_a_damaged_middle_line_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 2"):
        read_jsonl(path)


def test_rewind_purges_tensorboard_events(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = MetricLogger(tmp_path)
    for step in range(6):
        first.log({"loss": float(step)}, step=step)
    first.close()
    resumed = MetricLogger(tmp_path)
    resumed.rewind(3)
    for step in (3, 4):
        resumed.log({"loss": 10.0 * step}, step=step)
    resumed.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [
        (0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]


def test_resumed_events_sort_after_a_crashed_run_of_the_same_second(tmp_path):
    """TensorBoard reads event files in name order (second, host, pid): the crashed run's
    file, renamed as if a process with a larger pid had written it no earlier than the resumed
    run starts (a quick restart; one second ahead, so the test does not race the clock), must
    still be read before the resumed run's, or its steps undo the purge."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    crashed = MetricLogger(tmp_path)
    for step in range(6):
        crashed.log({"loss": float(step)}, step=step)
    crashed.close()
    (written,) = (tmp_path / "tensorboard").iterdir()
    same_second = f"events.out.tfevents.{int(time.time()) + 1}.host.99999999.0"
    written.rename(written.with_name(same_second))
    resumed = MetricLogger(tmp_path)
    resumed.rewind(3)
    for step in (3, 4):
        resumed.log({"loss": 10.0 * step}, step=step)
    resumed.close()
    names = sorted(p.name for p in (tmp_path / "tensorboard").iterdir())
    assert names[0] == same_second
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [
        (0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]
