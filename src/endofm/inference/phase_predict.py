"""``endofm predict phase``: a fine-tuned phase model over whole videos, and the causal step
API for live use.

Per video, ``DIR/<video>/`` gets ``phases.csv`` (a row per window, ``features.rate`` per
second: its start time, the probability of every phase, the decided phase, tool
probabilities), ``ribbon.png`` (the predicted phases as a coloured timeline, the true ones
under them when annotations are given), ``durations.csv`` (seconds per phase) and
``report.html``; ``DIR/index.html`` links every video and ``DIR/run.json`` records the run
(with the path, size and SHA-256 of the temporal model's and the backbone's weights). The
folder is guarded as every ``predict`` folder is (:class:`~endofm.inference.run_folder.RunFolder`):
the settings that change the outputs (checkpoint, ``--online``, ``--annotations``) are
recorded and a re-run with other ones is refused; a re-run skips the videos already through and
runs again those that failed.

``--online`` runs the causal model as if live (:class:`PhaseStream`): row ``k`` is what it
would have shown once window ``k`` had been seen, at ``shown_at_s`` (the window's end).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from endofm import __version__  # noqa: E402
from endofm.data import VideoError  # noqa: E402
from endofm.data.phase import PhaseDataset, read_phase_dataset  # noqa: E402
from endofm.data.phase.labels import segments  # noqa: E402
from endofm.inference.extract import VideoInput, collect_inputs  # noqa: E402
from endofm.inference.pages import finished, write_run  # noqa: E402
from endofm.inference.phase import phase_encoder  # noqa: E402
from endofm.inference.report import write_report  # noqa: E402
from endofm.inference.run_folder import RunFolder  # noqa: E402
from endofm.tasks.phase.model import PhaseTCN  # noqa: E402
from endofm.tasks.phase.task import (  # noqa: E402
    load_phase_model,
    saved_backbone,
    saved_phase_config,
)
from endofm.utils.device import resolve_device  # noqa: E402
from endofm.utils.figures import save_figure  # noqa: E402
from endofm.utils.io import atomic_write_text  # noqa: E402


@dataclass
class PhaseStep:
    """What the live display shows after one more window: the phase, its index and every
    phase's probability ``[P]`` (tool probabilities ``[K]`` or ``None``)."""

    phase: str
    index: int
    probs: np.ndarray
    tools: np.ndarray | None


class PhaseStream:
    """A causal phase model fed one window feature at a time (features so far → current
    phase), for live use.

    >>> stream = PhaseStream("runs/phase/best")
    >>> for feature in features:            # [D] each: stream.encoder's windows, in order
    ...     shown = stream.step(feature)    # PhaseStep(phase="CalotTriangleDissection", …)

    ``encoder`` (:class:`~endofm.inference.encoder.VideoEncoder`) makes the features with the
    settings the model was trained on (``rate`` windows per second; ``precision``: the
    encoder's, default the training's; ``backbone``: the encoder's backbone, default the
    one in the model's folder). Only the last ``model.receptive_rows`` features are kept, so
    memory does not grow with the procedure. ``model`` may be any module with PhaseTCN's
    ``causal``, ``receptive_rows`` and ``probabilities`` (the exported temporal graph on ONNX
    Runtime, :class:`endofm.deploy.phase.OnnxPhaseModel`).
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto",
                 model: PhaseTCN | None = None, meta: dict[str, Any] | None = None,
                 precision: str | None = None, backbone: torch.nn.Module | None = None
                 ) -> None:
        if model is None:
            model, meta = load_phase_model(checkpoint)
        if not model.causal:
            raise ValueError(f"{checkpoint}: an offline model (model.causal=false) looks at "
                             "future windows; train with model.causal=true for online use")
        self.device = resolve_device(device)
        self.model, self.meta = model.eval().to(self.device), meta
        self.checkpoint, self.precision = Path(checkpoint), precision
        self.phases: list[str] = list(meta["phases"])
        self.rate = float(meta["features"]["rate"])
        self.keep = model.receptive_rows
        self.buffer: list[np.ndarray] = []
        self.backbone = backbone
        self._encoder = None

    @property
    def encoder(self):
        """The feature extractor of the model's training settings (built on first use)."""
        if self._encoder is None:
            cfg = saved_phase_config(self.meta)
            cfg.train.device = str(self.device)
            if self.precision is not None:
                cfg.train.precision = self.precision
            backbone = (saved_backbone(self.checkpoint, self.meta) if self.backbone is None
                        else self.backbone)
            self._encoder = phase_encoder(cfg, backbone)
        return self._encoder

    def reset(self) -> None:
        """Start a new procedure."""
        self.buffer = []

    @torch.no_grad()
    def step(self, feature: np.ndarray) -> PhaseStep:
        """Add one window's feature ``[D]``; the phase the model shows now."""
        self.buffer = [*self.buffer[-(self.keep - 1):], np.asarray(feature, np.float32)]
        x = torch.from_numpy(np.stack(self.buffer)).to(self.device)
        phases, tools = self.model.probabilities(x)
        probs = phases[-1].cpu().numpy()
        index = int(probs.argmax())
        return PhaseStep(self.phases[index], index, probs,
                         None if tools is None else tools[-1].cpu().numpy())


def offline_probabilities(model: PhaseTCN, features: np.ndarray, device: torch.device
                          ) -> tuple[np.ndarray, np.ndarray | None]:
    """The whole video at once: ``[T, P]`` phase and ``[T, K]`` tool probabilities."""
    phases, tools = model.probabilities(torch.from_numpy(features).to(device))
    return phases.cpu().numpy(), None if tools is None else tools.cpu().numpy()


def online_probabilities(stream: PhaseStream, features: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray | None]:
    """Window by window as live: row ``k`` from the features ``0..k`` only."""
    stream.reset()
    steps = [stream.step(f) for f in features]
    tools = None if steps[0].tools is None else np.stack([s.tools for s in steps])
    return np.stack([s.probs for s in steps]), tools


def ribbon_plot(rows: Sequence[tuple[str, np.ndarray]], phases: Sequence[str], rate: float,
                path: Path, title: str) -> Path:
    """Coloured timelines (one per ``(name, labels [T])`` row, top to bottom)."""
    colours = plt.get_cmap("tab10" if len(phases) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(11, 0.8 + 0.6 * len(rows)))
    for r, (_, labels) in enumerate(rows):
        for phase, start, end in segments(labels):
            ax.broken_barh([(start / rate, (end - start) / rate)], (len(rows) - 1 - r, 0.8),
                           color=colours(phase % colours.N))
    ax.set_yticks([len(rows) - 1 - r + 0.4 for r in range(len(rows))])
    ax.set_yticklabels([name for name, _ in rows])
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    shown = sorted({int(p) for _, labels in rows for p in np.unique(labels)})
    handles = [matplotlib.patches.Patch(color=colours(p % colours.N), label=phases[p])
               for p in shown]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(rows) < 2
              else -0.25), ncol=min(4, len(handles)), fontsize=8, frameon=False)
    return save_figure(fig, path, bbox_inches="tight")


def csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


class PhasePredictRun:
    """One ``predict phase`` run of a saved model over videos into ``output``."""

    def __init__(self, checkpoint: str | Path, output: str | Path, online: bool = False,
                 annotations: str | Path | None = None, device: str = "auto",
                 batch_size: int | None = None, workers: int | None = None) -> None:
        self.checkpoint, self.output, self.online = Path(checkpoint), Path(output), online
        self.model, self.meta = load_phase_model(checkpoint)
        self.cfg = saved_phase_config(self.meta)
        self.cfg.train.device = device
        if batch_size:
            self.cfg.features.batch_size = batch_size
        if workers is not None:
            self.cfg.features.num_workers = workers
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.phases = list(self.meta["phases"])
        self.tools = list(self.meta["tools"])
        self.stream = (PhaseStream(checkpoint, device, self.model, self.meta) if online
                       else None)
        self.truth: PhaseDataset | None = (
            read_phase_dataset(annotations, need_videos=False, phases=tuple(self.phases))
            if annotations else None)
        backbone = saved_backbone(checkpoint, self.meta)
        self.encoder = phase_encoder(self.cfg, backbone)
        f = self.cfg.features
        self.folder = RunFolder(
            self.output, "predict phase",
            {"checkpoint": str(self.checkpoint), "online": online,
             "annotations": str(Path(annotations).resolve()) if annotations else None},
            {"device": device, "batch_size": f.batch_size, "workers": f.num_workers},
            weights=[self.checkpoint, backbone])  # the temporal model, its backbone

    def true_labels(self, name: str, count: int) -> np.ndarray | None:
        """The annotated phase at each row's start (``[count]``), when annotations are given
        and hold ``name``."""
        if self.truth is None:
            return None
        video = next((v for v in self.truth.videos if v.name == name), None)
        if video is None:
            return None
        return video.phases.at(np.arange(count) / self.cfg.features.rate)

    def video(self, path: Path, stem: str) -> dict[str, Any]:
        """Predict one video; write its files; return its ``index.html`` row."""
        features, windows = self.encoder.encode(path)
        if self.stream is not None:
            probs, tools = online_probabilities(self.stream, features)
        else:
            probs, tools = offline_probabilities(self.model, features, self.device)
        decided = probs.argmax(1)
        folder = self.output / stem
        rate = self.cfg.features.rate
        header = ["time_s", *(["shown_at_s"] if self.online else []),
                  *[f"prob_{p}" for p in self.phases], "phase",
                  *([f"tool_{t}" for t in self.tools] if tools is not None else [])]
        rows = [[round(w.start_s, 3), *([round(w.end_s, 3)] if self.online else []),
                 *[f"{v:.4f}" for v in probs[k]], self.phases[decided[k]],
                 *([f"{v:.4f}" for v in tools[k]] if tools is not None else [])]
                for k, w in enumerate(windows)]
        atomic_write_text(csv_text(header, rows), folder / "phases.csv")
        truth = self.true_labels(Path(stem).name, len(decided))
        ribbon = [("predicted" + (" (online)" if self.online else ""), decided)]
        ribbon += [("annotated", truth)] if truth is not None else []
        ribbon_plot(ribbon, self.phases, rate, folder / "ribbon.png", stem)
        durations = self.durations(decided, truth)
        atomic_write_text(csv_text(list(durations[0]), [list(d.values()) for d in durations]),
                          folder / "durations.csv")
        summary = {"duration": f"{len(decided) / rate:.0f} s",
                   "phases (in order)": " → ".join(self.phases[p] for p, _, _ in
                                                   segments(decided))}
        if truth is not None:
            summary["accuracy vs annotation"] = f"{float((truth == decided).mean()):.3f}"
        settings = {"checkpoint": str(self.checkpoint), "online": self.online,
                    "rate (windows/s)": rate, "endofm": __version__}
        write_report(folder / "report.html", f"{stem}: phases", summary,
                     [("ribbon.png", "Phase timeline")], [],
                     [("phases.csv", "per-window phase probabilities"),
                      ("durations.csv", "phase durations")], settings)
        return {"video": stem, "report": f"{stem}/report.html", **summary}

    def durations(self, decided: np.ndarray, truth: np.ndarray | None) -> list[dict[str, Any]]:
        rate = self.cfg.features.rate
        pred = np.bincount(decided, minlength=len(self.phases)) / rate
        true = (np.bincount(truth, minlength=len(self.phases)) / rate
                if truth is not None else None)
        return [{"phase": p, "predicted_s": round(float(pred[i]), 2),
                 **({"annotated_s": round(float(true[i]), 2)} if true is not None else {})}
                for i, p in enumerate(self.phases)]

    def run(self, sources: Sequence[str | Path]) -> dict[str, Any]:
        """Predict every video of ``sources`` not already through (module docstring); returns
        the ``run.json`` content."""
        skipped: list[dict] = []
        inputs = collect_inputs(sources, skipped)
        self.folder.check()
        for v in inputs:
            if not finished(self.folder, v):
                self.folder.save_record(v.stem, self.record(v))
        return write_run(self.folder, inputs, str(self.checkpoint), skipped,
                         "Phase recognition", task="phase")

    def record(self, v: VideoInput) -> dict[str, Any]:
        """The per-video record of ``v``: its ``index.html`` row, or the error that stopped it."""
        try:
            row, error = self.video(v.path, v.stem), None
        except VideoError as exc:
            row, error = None, exc.reason
        return {"video": v.key, "row": row, "error": error, "failed_windows": 0,
                "resolved": {}}


def predict_phase(checkpoint: str | Path, sources: Sequence[str | Path], output: str | Path,
                  online: bool = False, annotations: str | Path | None = None,
                  device: str = "auto", batch_size: int | None = None,
                  workers: int | None = None) -> dict[str, Any]:
    """Predict the phases of every video named by ``sources`` into ``output`` (module
    docstring); ``annotations``: a phase dataset whose videos' true phases are drawn under the
    predicted ones; ``batch_size``, ``workers``: the backbone's windows per batch and decoding
    workers (default: as trained)."""
    return PhasePredictRun(checkpoint, output, online, annotations, device, batch_size,
                           workers).run(sources)
