"""Vectorised numpy rendering of synthetic endoscopy frames with exact polyp masks.

A *scene* is a mucosa texture in world coordinates (pinkish-red noise with dark vessel
ridges), a lumen (dark hole) and polyps fixed in the world. A *camera* (translation, zoom,
rotation per frame) maps output pixels to world points, so polyps move with the view. Each
polyp is a shaded bump whose outline is an ellipse (hyperplastic: pale and smooth) or a
lobulated ellipse (adenomatous: red, with a rough texture); its mask is the exact set of pixel
centres inside that outline, and its box is the bounding box of the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

TEXTURE_SIZE = 256  # a power of two: world coordinates wrap with a bit mask
ADENOMATOUS, HYPERPLASTIC = 1, 2
CLASS_NAMES = {ADENOMATOUS: "adenomatous", HYPERPLASTIC: "hyperplastic"}


@dataclass(frozen=True)
class Style:
    """The look of a render: mucosa, vessel and polyp colours (RGB in [0, 1]), the lighting
    (overall ``gain``, ``gamma``, ``vignette`` strength, ``lumen_size`` of the dark hole as a
    fraction of the frame) and how far polyps bulge out of the surface (``polyp_relief``)."""

    mucosa: tuple[float, float, float] = (0.86, 0.48, 0.42)
    vessel: tuple[float, float, float] = (0.55, 0.12, 0.15)
    adenomatous: tuple[float, float, float] = (0.78, 0.2, 0.24)
    hyperplastic: tuple[float, float, float] = (0.97, 0.8, 0.72)
    gain: float = 1.0
    gamma: float = 1.0
    vignette: float = 0.45
    lumen_size: float = 0.35
    polyp_relief: float = 0.38


# ``white_light``: the default look. ``nbi``: a narrow-band-imaging-like look (teal-brown
# mucosa, dark brown vessels, brownish adenomas, flat pale hyperplastic polyps, a dimmer scope
# with a stronger vignette and a larger lumen) for checking that a recipe was not tuned to the
# default render.
DEFAULT_STYLE = Style()
STYLES = {
    "white_light": DEFAULT_STYLE,
    "nbi": Style(mucosa=(0.42, 0.58, 0.55), vessel=(0.3, 0.16, 0.08),
                 adenomatous=(0.5, 0.3, 0.16), hyperplastic=(0.78, 0.8, 0.7), gain=0.85,
                 gamma=1.25, vignette=0.65, lumen_size=0.5, polyp_relief=0.2),
}


def get_style(name: str) -> Style:
    if name not in STYLES:
        raise ValueError(f"unknown synth style {name!r}; choose one of {sorted(STYLES)}")
    return STYLES[name]


@dataclass(frozen=True)
class Polyp:
    """A polyp in world coordinates (pixels of a frame at zoom 1, origin at the frame centre)."""

    x: float
    y: float
    radius_x: float
    radius_y: float
    angle: float
    label: int
    lobes: int
    lobe_phase: float


@dataclass(frozen=True)
class Scene:
    """A world: ``texture`` float32 ``[S, S, 3]`` in [0, 1], a rough ``detail`` float32
    ``[S, S]`` for adenomatous surfaces, the lumen position and the polyps."""

    texture: np.ndarray
    detail: np.ndarray
    lumen: tuple[float, float]
    polyps: tuple[Polyp, ...]
    speculars: np.ndarray
    style: Style = Style()


@dataclass(frozen=True)
class Camera:
    """Per-frame camera path: arrays ``[T]`` of translation (world px), zoom and rotation (rad)."""

    tx: np.ndarray
    ty: np.ndarray
    zoom: np.ndarray
    angle: np.ndarray


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth periodic random field float32 ``[size, size]`` in [0, 1]: ``cells``² random
    values upsampled bicubically with wrap-around padding, so tiling it shows no seams."""
    coarse = np.pad(rng.random((cells, cells), dtype=np.float32), 2, mode="wrap")
    step = size / cells
    padded = round(step * (cells + 4))
    image = Image.fromarray(coarse, mode="F").resize((padded, padded), Image.Resampling.BICUBIC)
    offset = round(2 * step)
    field = np.asarray(image, dtype=np.float32)[offset:offset + size, offset:offset + size]
    return (field - field.min()) / max(float(np.ptp(field)), 1e-6)


def mucosa_texture(rng: np.random.Generator, style: Style = Style()) -> np.ndarray:
    """Pinkish-red mucosa with vessels, float32 ``[S, S, 3]`` in [0, 1]."""
    base = 0.6 * smooth_noise(rng, TEXTURE_SIZE, 8) + 0.4 * smooth_noise(rng, TEXTURE_SIZE, 32)
    ridge = smooth_noise(rng, TEXTURE_SIZE, 16)
    vessels = np.clip(1.0 - np.abs(ridge - 0.5) / 0.03, 0.0, 1.0)
    tint = rng.uniform(-0.05, 0.05, size=3).astype(np.float32)
    colour = np.array(style.mucosa, dtype=np.float32) + tint
    texture = colour * (0.75 + 0.35 * base[..., None])
    vessel_colour = np.array(style.vessel, dtype=np.float32)
    texture = texture * (1 - 0.7 * vessels[..., None]) + 0.7 * vessels[..., None] * vessel_colour
    return np.clip(texture, 0.0, 1.0).astype(np.float32)


def random_polyp(rng: np.random.Generator, label: int, frame_size: int) -> Polyp:
    """A polyp of class ``label`` near the frame centre, radius 14–26% of ``frame_size``."""
    radius = rng.uniform(0.14, 0.26) * frame_size
    offset = rng.uniform(-0.18, 0.18, size=2) * frame_size
    return Polyp(x=float(offset[0]), y=float(offset[1]), radius_x=float(radius),
                 radius_y=float(radius * rng.uniform(0.7, 1.0)), angle=float(rng.uniform(0, np.pi)),
                 label=label, lobes=int(rng.integers(4, 7)),
                 lobe_phase=float(rng.uniform(0, 2 * np.pi)))


def random_scene(rng: np.random.Generator, labels: list[int], frame_size: int,
                 style: Style = Style()) -> Scene:
    """A scene with one polyp per entry of ``labels`` (1 = adenomatous, 2 = hyperplastic)."""
    polyps = [random_polyp(rng, label, frame_size) for label in labels]
    lumen = tuple(float(v) for v in rng.uniform(-0.3, 0.3, size=2) * frame_size)
    speculars = rng.uniform(-0.6, 0.6, size=(5, 2)).astype(np.float32) * frame_size
    return Scene(texture=mucosa_texture(rng, style), detail=smooth_noise(rng, TEXTURE_SIZE, 64),
                 lumen=(lumen[0], lumen[1]), polyps=tuple(polyps), speculars=speculars,
                 style=style)


def random_camera(rng: np.random.Generator, num_frames: int, frame_size: int) -> Camera:
    """A smooth camera path over ``num_frames``: drift ≤ 12% of the frame, zoom 0.85–1.2,
    rotation ≤ 0.35 rad, each a sum of two slow sinusoids with random phases."""
    t = np.linspace(0.0, 1.0, num_frames, dtype=np.float32)

    def wave(amplitude: float) -> np.ndarray:
        freq = rng.uniform(0.3, 1.5, size=2)
        phase = rng.uniform(0, 2 * np.pi, size=2)
        return amplitude * 0.5 * (np.sin(2 * np.pi * freq[0] * t + phase[0])
                                  + np.sin(2 * np.pi * freq[1] * t + phase[1]))

    return Camera(tx=wave(0.12 * frame_size), ty=wave(0.12 * frame_size),
                  zoom=1.025 + wave(0.175),
                  angle=wave(0.35))


def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``[H, W]`` relative to the frame centre."""
    ys = np.arange(height, dtype=np.float32) - (height - 1) / 2
    xs = np.arange(width, dtype=np.float32) - (width - 1) / 2
    return np.meshgrid(xs, ys, indexing="xy")


def _to_world(px: np.ndarray, py: np.ndarray, camera: Camera, i: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """World coordinates of output pixels ``[H, W]`` for frame ``i``."""
    cos, sin, zoom = np.cos(camera.angle[i]), np.sin(camera.angle[i]), camera.zoom[i]
    wx = (cos * px - sin * py) / zoom + camera.tx[i]
    wy = (sin * px + cos * py) / zoom + camera.ty[i]
    return wx, wy


def _sample(field: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Nearest sample of a wrapped world ``field`` ``[S, S, ...]`` at world points ``[H, W]``."""
    wrap = field.shape[0] - 1  # the texture size is a power of two
    ix = np.floor(wx).astype(np.int32) & wrap
    iy = np.floor(wy).astype(np.int32) & wrap
    return field[iy, ix]


def polyp_geometry(polyp: Polyp, wx: np.ndarray, wy: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inside mask (bool ``[H, W]``), normalised radius ``rho`` and polyp-frame ``u, v``."""
    dx, dy = wx - polyp.x, wy - polyp.y
    cos, sin = np.cos(polyp.angle), np.sin(polyp.angle)
    u = (cos * dx + sin * dy) / polyp.radius_x
    v = (-sin * dx + cos * dy) / polyp.radius_y
    rho = np.sqrt(u * u + v * v)
    if polyp.label == ADENOMATOUS:
        theta = np.arctan2(v, u)
        rho = rho / (1.0 + 0.16 * np.sin(polyp.lobes * theta + polyp.lobe_phase))
    return rho <= 1.0, rho, u, v


def _polyp_colour(polyp: Polyp, rho: np.ndarray, u: np.ndarray, v: np.ndarray,
                  detail: np.ndarray, style: Style = Style()) -> np.ndarray:
    """Shaded polyp colour float32 ``[H, W, 3]``: a lit dome, red/rough or pale/smooth."""
    height = np.sqrt(np.clip(1.0 - rho * rho, 0.0, 1.0))
    shade = (1.0 - style.polyp_relief) + style.polyp_relief * height - 0.12 * (u + v)
    if polyp.label == ADENOMATOUS:
        base = np.array(style.adenomatous, dtype=np.float32)
        surface = 0.7 + 0.5 * detail
    else:
        base = np.array(style.hyperplastic, dtype=np.float32)
        surface = np.ones_like(rho)
    return base * (shade * surface)[..., None]


def _speculars(points: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Specular intensity ``[H, W]`` in [0, 1] from small Gaussian spots at world ``points``."""
    nearest = np.full_like(wx, np.inf)
    for x, y in points:
        nearest = np.minimum(nearest, (wx - x) ** 2 + (wy - y) ** 2)
    return np.exp(-nearest / 6.0)


def render_frame(scene: Scene, camera: Camera, i: int, height: int, width: int,
                 show_polyps: bool = True) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """Frame ``i``: uint8 ``[H, W, 3]`` RGB, one bool mask ``[H, W]`` per visible polyp and
    their labels. A polyp whose mask is empty (out of view) is not listed."""
    px, py = _pixel_grid(height, width)
    wx, wy = _to_world(px, py, camera, i)
    colour = _sample(scene.texture, wx, wy)
    masks: list[np.ndarray] = []
    labels: list[int] = []
    on_polyp = np.zeros(wx.shape, dtype=bool)
    highlight_points = [scene.speculars]
    for polyp in scene.polyps if show_polyps else ():
        inside, rho, u, v = polyp_geometry(polyp, wx, wy)
        if not inside.any():
            continue
        detail = _sample(scene.detail, wx * 3, wy * 3)
        colour = np.where(inside[..., None], _polyp_colour(polyp, rho, u, v, detail,
                                                                 scene.style), colour)
        masks.append(inside)
        labels.append(polyp.label)
        on_polyp |= inside
        highlight_points.append(np.array([[polyp.x - 0.35 * polyp.radius_x,
                                           polyp.y - 0.35 * polyp.radius_y]], dtype=np.float32))
    style = scene.style
    lumen_dist = np.hypot(wx - scene.lumen[0], wy - scene.lumen[1]) / (
        style.lumen_size * min(height, width))
    light = np.clip(lumen_dist, np.where(on_polyp, 0.6, 0.12), 1.0) ** 0.8
    vignette = 1.0 - style.vignette * (np.hypot(px, py) / (0.5 * np.hypot(height, width))) ** 2
    colour = colour * (light * vignette)[..., None]
    spec = _speculars(np.concatenate(highlight_points), wx, wy)[..., None]
    colour = colour * (1 - spec) + spec
    if style.gain != 1.0 or style.gamma != 1.0:
        colour = style.gain * np.clip(colour, 0.0, 1.0) ** style.gamma
    return (np.clip(colour, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), masks, labels


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(xmin, ymin, xmax, ymax)`` of a non-empty bool mask ``[H, W]``, in pixel
    edges: the mask occupies columns ``xmin .. xmax-1`` and rows ``ymin .. ymax-1``."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
