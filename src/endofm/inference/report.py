"""Plots, key frames and the HTML pages of a ``predict`` run.

Every page is self-contained: images are files beside it, referenced by relative paths; no
script, font or style sheet is fetched from the network.
"""

from __future__ import annotations

import heapq
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from endofm.utils.figures import save_figure
from endofm.utils.io import atomic_write, atomic_write_text  # noqa: E402

STYLE = ("body{font-family:sans-serif;margin:24px;max-width:1100px}"
         "img{max-width:100%}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
         ".frames{display:flex;flex-wrap:wrap;gap:8px}.frames figure{margin:0}"
         "figcaption{font-size:12px;color:#444}")


def timeline_plot(times: np.ndarray, series: Mapping[str, np.ndarray], ylabel: str, path: Path,
                  threshold: float | None = None, title: str = "") -> Path:
    """Curves ``series`` (name → values ``[N]``) against ``times`` (seconds)."""
    fig, ax = plt.subplots(figsize=(10, 3))
    for name, values in series.items():
        ax.plot(times, values, label=name, linewidth=1.2, marker="." if len(times) < 60 else None)
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1,
                   label=f"threshold {threshold:g}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, path, bbox_inches="tight")


def tint(frame: np.ndarray, mask: np.ndarray, colour: Sequence[int] = (255, 0, 0),
         alpha: float = 0.45) -> np.ndarray:
    """uint8 ``[H, W, 3]`` frame with the pixels of ``mask`` ``[H, W]`` tinted."""
    out = frame.astype(np.float32)
    sel = mask > 0
    out[sel] = (1 - alpha) * out[sel] + alpha * np.asarray(colour, dtype=np.float32)
    return out.round().astype(np.uint8)


def draw_boxes(frame: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
               threshold: float) -> np.ndarray:
    """uint8 ``[H, W, 3]`` with the boxes scoring ``>= threshold`` drawn and their scores."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    for box, score, label in zip(boxes, scores, labels, strict=True):
        if score < threshold:
            continue
        colour = (255, 40, 40) if int(label) == 1 else (40, 220, 255)
        draw.rectangle([float(v) for v in box], outline=colour, width=2)
        draw.text((float(box[0]) + 2, float(box[1]) + 1), f"{score:.2f}", fill=colour)
    return np.asarray(image)


@dataclass(order=True)
class KeyFrame:
    score: float
    caption: str = field(compare=False)
    image: np.ndarray = field(compare=False, repr=False)


class TopFrames:
    """The ``k`` highest-scoring frames seen so far (memory: ``k`` images)."""

    def __init__(self, k: int = 6) -> None:
        self.k, self.heap, self.count = k, [], 0

    def offer(self, score: float, caption: str, image_fn) -> None:
        """``image_fn()`` (uint8 ``[H, W, 3]``) is only called when the frame makes the cut."""
        self.count += 1
        if len(self.heap) < self.k or score > self.heap[0].score:
            item = KeyFrame(score, caption, image_fn())
            (heapq.heappush if len(self.heap) < self.k else heapq.heapreplace)(self.heap, item)

    def save(self, folder: Path) -> list[tuple[str, str]]:
        """Write the frames as JPEGs (best first); returns ``(relative path, caption)`` pairs."""
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for rank, item in enumerate(sorted(self.heap, reverse=True)):
            path = folder / f"keyframe_{rank:02d}.jpg"
            atomic_write(path, lambda tmp, im=item.image: Image.fromarray(im).save(tmp, "JPEG",
                                                                                 quality=90))
            out.append((f"{folder.name}/{path.name}", item.caption))
        return out


def _table(rows: Mapping[str, object]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows.items())
    return f"<table>{cells}</table>"


def write_report(path: Path, title: str, summary: Mapping[str, object],
                 images: Sequence[tuple[str, str]], keyframes: Sequence[tuple[str, str]],
                 links: Sequence[tuple[str, str]], settings: Mapping[str, object]) -> Path:
    """One video's ``report.html``: summary, timeline images, key frames, artefact links,
    settings. Paths are relative to the page."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             _table(summary)]
    for src, alt in images:
        parts.append(f"<h2>{html.escape(alt)}</h2><img class='timeline' src='{html.escape(src)}'"
                     f" alt='{html.escape(alt)}'>")
    if keyframes:
        figs = "".join(f"<figure><img src='{html.escape(src)}' width='240' "
                       f"alt='{html.escape(cap)}'><figcaption>{html.escape(cap)}</figcaption>"
                       "</figure>" for src, cap in keyframes)
        parts.append(f"<h2>Key frames (highest scores)</h2><div class='frames'>{figs}</div>")
    if links:
        items = "".join(f"<li><a href='{html.escape(href)}'>{html.escape(text)}</a></li>"
                        for href, text in links)
        parts.append(f"<h2>Files</h2><ul>{items}</ul>")
    parts.append(f"<h2>Settings</h2>{_table(settings)}</body></html>")
    return atomic_write_text("".join(parts), path)


def write_index(path: Path, title: str, rows: Sequence[Mapping[str, object]],
                columns: Sequence[str]) -> Path:
    """``index.html``: one row per video, its name linking to its report (``row["report"]``)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = html.escape(str(row.get(c, "")))
            if c == "video" and row.get("report"):
                value = f"<a href='{html.escape(str(row['report']))}'>{value}</a>"
            cells.append(f"<td>{value}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<table><tr>{head}</tr>{''.join(body)}</table></body></html>")
    return atomic_write_text(page, path)
