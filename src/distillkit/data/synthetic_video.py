"""An embedded, deterministic video classification benchmark drawn in numpy, in three presets.

*motion* (Something-Something-like): the class is the motion of an object (translation in 8 directions, rotation,
growing/shrinking, two objects approaching/separating, move-then-stop, orbiting). Shapes, colours, textures,
backgrounds, start positions and speeds are random per video and independent of the class, so a single frame does
not tell the class. Every class has a time-reversed partner (left ↔ right, grow ↔ shrink, ...): a class is a
trajectory of normalised time τ ∈ [-½, ½] and its partner is the same trajectory of -τ, so reversing the frames of
a video gives, noise aside, exactly a video of the partner class (`time_reversal_map`).

*appearance* (Kinetics-like): the class sets the object's shape and colour and the background pattern, visible in
every frame; the small motion (drift and spin) is random and independent of the class.

*mixed*: the class is a motion *and* a colour: the first nine motions (left, right, up, down, the two rotations,
grow, shrink, approach), each in red and in blue, so that neither one frame nor the motion alone tells the class.

Every video holds two objects over a static textured background, plus mild Gaussian noise. In the motion preset
the second object is a static distractor, except in approach/separate, where it is the partner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np

from distillkit.engine.progress import progress_bar

Preset = Literal["motion", "appearance", "mixed"]

# (name, trajectory kind, direction for "translate", time sign); partners share kind and direction.
MOTION_CLASSES: tuple[tuple[str, str, tuple[float, float], int], ...] = (
    ("move_left", "translate", (1.0, 0.0), -1),
    ("move_right", "translate", (1.0, 0.0), 1),
    ("move_up", "translate", (0.0, 1.0), -1),
    ("move_down", "translate", (0.0, 1.0), 1),
    ("rotate_clockwise", "rotate", (0.0, 0.0), 1),
    ("rotate_anticlockwise", "rotate", (0.0, 0.0), -1),
    ("grow", "scale", (0.0, 0.0), 1),
    ("shrink", "scale", (0.0, 0.0), -1),
    ("approach", "pair", (0.0, 0.0), 1),
    ("separate", "pair", (0.0, 0.0), -1),
    ("move_then_stop", "move_stop", (0.0, 0.0), 1),
    ("stop_then_move", "move_stop", (0.0, 0.0), -1),
    ("move_up_left", "translate", (1.0, 1.0), -1),
    ("move_down_right", "translate", (1.0, 1.0), 1),
    ("move_up_right", "translate", (-1.0, 1.0), -1),
    ("move_down_left", "translate", (-1.0, 1.0), 1),
    ("orbit_clockwise", "orbit", (0.0, 0.0), 1),
    ("orbit_anticlockwise", "orbit", (0.0, 0.0), -1),
)

SHAPES = ("triangle", "ell", "tee", "half_disc", "pacman", "key")
HUES = (
    "red",
    "orange",
    "yellow",
    "chartreuse",
    "green",
    "spring",
    "cyan",
    "azure",
    "blue",
    "violet",
    "magenta",
    "rose",
)
APPEARANCE_PATTERNS = ("hstripes", "vstripes", "checker", "dots")


def _appearance_class(c: int) -> tuple[int, int, int]:
    """(hue index, shape index, background pattern index) of appearance class c; unique for c < 24."""
    return c % len(HUES), c % len(SHAPES), (c + c // len(HUES)) % len(APPEARANCE_PATTERNS)


APPEARANCE_CLASSES: tuple[str, ...] = tuple(
    f"{HUES[h]}_{SHAPES[s]}_on_{APPEARANCE_PATTERNS[p]}"
    for h, s, p in map(_appearance_class, range(2 * len(HUES)))
)


MIXED_MOTIONS = 9
"""The mixed preset uses the first nine motion classes ..."""
MIXED_HUES = (0, 8)
"""... each in red and in blue (indices into HUES): class c has motion c % 9 and colour c // 9."""


def _mixed_class(c: int) -> tuple[int, int]:
    """(motion class, hue index) of mixed class c."""
    return c % MIXED_MOTIONS, MIXED_HUES[c // MIXED_MOTIONS]


MIXED_CLASSES: tuple[str, ...] = tuple(
    f"{HUES[h]}_{MOTION_CLASSES[m][0]}" for m, h in map(_mixed_class, range(MIXED_MOTIONS * len(MIXED_HUES)))
)


def preset_classes(preset: Preset) -> tuple[str, ...]:
    """All class names of a preset, in label order (a run with `num_classes=k` uses the first k)."""
    if preset == "motion":
        return tuple(name for name, *_ in MOTION_CLASSES)
    if preset == "appearance":
        return APPEARANCE_CLASSES
    if preset == "mixed":
        return MIXED_CLASSES
    raise ValueError(f"unknown preset '{preset}'; choose 'motion', 'appearance' or 'mixed'")


def time_reversal_map(preset: Preset, num_classes: int | None = None) -> dict[int, int]:
    """Label of each class's time-reversed videos: partners for *motion*, the identity for *appearance*.

    With `num_classes`, only classes whose partner is also among the first `num_classes` are listed.
    """
    names = preset_classes(preset)
    k = len(names) if num_classes is None else num_classes
    if preset == "appearance":
        return {c: c for c in range(k)}
    if preset == "mixed":  # the partner motion in the same colour
        motion = time_reversal_map("motion")
        partners = {c: c - c % MIXED_MOTIONS + motion[c % MIXED_MOTIONS] for c in range(k)}
        return {c: r for c, r in partners.items() if motion[c % MIXED_MOTIONS] < MIXED_MOTIONS and r < k}
    mapping = {}
    for c, (_, kind, direction, sign) in enumerate(MOTION_CLASSES[:k]):
        for r, (_, kind_r, direction_r, sign_r) in enumerate(MOTION_CLASSES[:k]):
            if kind_r == kind and direction_r == direction and sign_r == -sign:
                mapping[c] = r
    return mapping


def _sd_box(u: np.ndarray, v: np.ndarray, cu: float, cv: float, hu: float, hv: float) -> np.ndarray:
    return np.maximum(np.abs(u - cu) - hu, np.abs(v - cv) - hv)


def _sd_disc(u: np.ndarray, v: np.ndarray, cu: float, cv: float, r: float) -> np.ndarray:
    return np.sqrt((u - cu) ** 2 + (v - cv) ** 2) - r


def _shape_sdf(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (local units, < 0 inside) of an asymmetric shape spanning about [-1, 1]²."""
    if shape == 0:  # triangle pointing along +u
        a, b = 0.357, 0.934  # unit normals of the slanted edges through (1, 0) and (-0.7, ±0.65)
        return np.maximum(np.maximum(-u - 0.7, a * u + b * v - a), a * u - b * v - a)
    if shape == 1:
        return np.minimum(_sd_box(u, v, -0.55, 0.0, 0.35, 0.95), _sd_box(u, v, 0.0, 0.6, 0.9, 0.35))
    if shape == 2:
        return np.minimum(_sd_box(u, v, 0.0, -0.6, 0.95, 0.3), _sd_box(u, v, 0.0, 0.15, 0.3, 0.8))
    if shape == 3:
        return np.maximum(_sd_disc(u, v, -0.4, 0.0, 1.1), -0.4 - u)
    if shape == 4:
        sin, cos = np.sin(0.55), np.cos(0.55)
        wedge = np.maximum(cos * v - sin * u, -cos * v - sin * u)
        return np.maximum(_sd_disc(u, v, 0.0, 0.0, 0.95), -wedge)
    if shape == 5:
        bar = np.minimum(_sd_box(u, v, 0.2, 0.0, 0.8, 0.2), _sd_box(u, v, 0.8, 0.3, 0.13, 0.25))
        return np.minimum(bar, _sd_disc(u, v, -0.6, 0.0, 0.4))
    raise ValueError(f"no shape {shape}")


def _texture(kind: np.ndarray, freq: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Two-tone texture in object coordinates, 0 or 1: solid, stripes, halves or checker (per video kind)."""
    k, f = kind[:, None, None, None], np.pi * freq[:, None, None, None]
    stripes = np.cos(f * u) > 0
    return np.select([k == 1, k == 2, k == 3], [stripes, v > 0, stripes ^ (np.cos(f * v) > 0)], False)


def _render_objects(
    canvas: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    scale: np.ndarray,
    theta: np.ndarray,
    shape: np.ndarray,
    colours: np.ndarray,
    texture: tuple[np.ndarray, np.ndarray],
    grid: tuple[np.ndarray, np.ndarray],
) -> None:
    """Alpha-blend one object per video into canvas (n, T, S, S, 3), in place; trajectories are (n, T)."""
    x, y = grid
    size = x.shape[-1]
    for s in np.unique(shape):
        idx = np.flatnonzero(shape == s)
        col = (slice(None), slice(None), None, None)
        sc = scale[idx][col]
        dx, dy = x - cx[idx][col], y - cy[idx][col]
        cos, sin = np.cos(theta[idx])[col], np.sin(theta[idx])[col]
        u = (dx * cos + dy * sin) / sc
        v = (-dx * sin + dy * cos) / sc
        alpha = np.clip(0.5 - _shape_sdf(int(s), u, v) * sc * (size / 2), 0.0, 1.0).astype(np.float32)
        tone = _texture(texture[0][idx], texture[1][idx], u, v)
        a, b = colours[idx, 0][:, None, None, None, :], colours[idx, 1][:, None, None, None, :]
        paint = np.where(tone[..., None], b, a)
        canvas[idx] += alpha[..., None] * (paint - canvas[idx])


def _background(
    kind: np.ndarray,
    angle: np.ndarray,
    freq: np.ndarray,
    phase: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Pattern in [-1, 1] of shape (n, S, S): 0 stripes, 1 checker, 2 dots, 3 linear gradient."""
    x, y = grid
    col = (slice(None), None, None)
    cos, sin = np.cos(angle)[col], np.sin(angle)[col]
    xr, yr = x * cos + y * sin, -x * sin + y * cos
    f = np.pi * freq[col]
    wave_u, wave_v = np.cos(f * xr + phase[:, 0][col]), np.cos(f * yr + phase[:, 1][col])
    k = kind[col]
    return np.select(
        [k == 0, k == 1, k == 2],
        [wave_u, np.sign(wave_u * wave_v), np.where(wave_u * wave_v > 0.5, 1.0, -1.0)],
        np.clip(xr, -1.0, 1.0),
    )


def _contrasting(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """Two random tones (n, 2, 3) per row of `base` (n, 3) that stand out from it."""
    n = base.shape[0]
    direction = np.where(base.mean(axis=1, keepdims=True) < 0.5, 1.0, -1.0)[:, None, :]
    contrast = rng.uniform(0.35, 0.6, (n, 2, 1))
    return np.clip(base[:, None, :] + direction * contrast + rng.uniform(-0.2, 0.2, (n, 2, 3)), 0.0, 1.0)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV → RGB, all inputs in [0, 1] of shape (n,); returns (n, 3)."""
    k = (np.array([5.0, 3.0, 1.0]) + h[:, None] * 6) % 6
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _motion_paths(labels: np.ndarray, tau: np.ndarray, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-frame (n, T) centre, scale and angle of both objects for motion classes; class time is ±tau."""
    col = (slice(None), None)
    path = _static_paths(p, len(tau))
    table = [MOTION_CLASSES[c] for c in labels]
    kind = np.array([k for _, k, _, _ in table])
    direction = np.array([d for _, _, d, _ in table])
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    t = np.array([s for *_, s in table], dtype=np.float64)[col] * tau  # the time-reversed partner uses -tau
    amount, hx, hy = p["amount"][col], np.cos(p["heading"])[col], np.sin(p["heading"])[col]
    length = 0.6 + 0.3 * amount
    stop = 2 * length * (np.minimum(t, 0) + 0.25)  # covers `length` in the first half, then rests
    offsets = {
        "translate": (length * t * direction[:, 0:1], length * t * direction[:, 1:2]),
        "move_stop": (stop * hx, stop * hy),
    }
    phi = p["heading"][col] + np.pi * (1 + 0.5 * amount) * t
    offsets["orbit"] = ((0.2 + 0.1 * amount) * np.cos(phi), (0.2 + 0.1 * amount) * np.sin(phi))
    for k, (dx, dy) in offsets.items():
        m = kind == k
        path["cx1"][m] += dx[m]
        path["cy1"][m] += dy[m]
    m = kind == "rotate"
    path["th1"][m] += (np.pi * (0.6 + 0.4 * amount) * t)[m]
    m = kind == "scale"
    path["sc1"][m] *= np.exp(np.log(2.0 + amount) * t)[m]
    m = kind == "pair"  # the second object is the partner: both move along a random axis
    half = (0.6 + 0.2 * amount) * (1 - 1.2 * t) / 2
    for i, (axis, h) in enumerate((("x", hx), ("y", hy))):
        centre = p["mid"][:, i : i + 1]
        path[f"c{axis}1"][m] = (centre + half * h)[m]
        path[f"c{axis}2"][m] = (centre - half * h)[m]
    return path


def _static_paths(p: dict[str, np.ndarray], frames: int) -> dict[str, np.ndarray]:
    """Both objects at rest: (n, T) arrays cx, cy, sc, th for object 1 (main) and 2."""

    def rep(a: np.ndarray) -> np.ndarray:
        return np.repeat(a[:, None], frames, axis=1)

    return {
        "cx1": rep(p["mid"][:, 0]),
        "cy1": rep(p["mid"][:, 1]),
        "sc1": rep(p["scale"][:, 0]),
        "th1": rep(p["theta"][:, 0]),
        "cx2": rep(p["other"][:, 0]),
        "cy2": rep(p["other"][:, 1]),
        "sc2": rep(p["scale"][:, 1]),
        "th2": rep(p["theta"][:, 1]),
    }


def make_synthetic_videos(
    preset: Preset, num_classes: int, videos_per_class: int, frames: int, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Generate `num_classes * videos_per_class` clips of `frames` frames of `size`×`size` RGB pixels.

    Returns uint8 videos (N, T, H, W, 3), int64 labels (N,) and the class names. Classes are interleaved
    (video i has label i % num_classes). Deterministic: the same arguments give identical bytes.
    """
    names = preset_classes(preset)
    if not 1 <= num_classes <= len(names):
        raise ValueError(f"num_classes must be in 1..{len(names)} for preset '{preset}', got {num_classes}")
    if videos_per_class < 1 or frames < 1 or size < 4:
        raise ValueError("videos_per_class and frames must be >= 1 and size >= 4")
    rng = np.random.default_rng(seed)
    n = num_classes * videos_per_class
    labels = np.tile(np.arange(num_classes, dtype=np.int64), videos_per_class)

    # All random draws happen up front in a fixed order, independent of the labels.
    p = {"mid": rng.uniform(-0.35, 0.35, (n, 2))}
    scale1, theta1 = np.exp(rng.uniform(np.log(0.2), np.log(0.32), n)), rng.uniform(0, 2 * np.pi, n)
    p["heading"], p["amount"], spin = (
        rng.uniform(0, 2 * np.pi, n),
        rng.uniform(0, 1, n),
        rng.uniform(-0.6, 0.6, n),
    )
    shape = rng.integers(0, len(SHAPES), (n, 2))
    texture = rng.integers(0, 4, (n, 2)), rng.integers(2, 4, (n, 2)).astype(np.float64)
    p["other"] = rng.uniform(-0.6, 0.6, (n, 2))  # the second object's centre
    p["scale"] = np.stack([scale1, np.exp(rng.uniform(np.log(0.2), np.log(0.32), n))], axis=1)
    p["theta"] = np.stack([theta1, rng.uniform(0, 2 * np.pi, n)], axis=1)
    bg_uniform = rng.uniform(0, 1, (n, 3))
    if preset == "motion":
        bg_colour = bg_uniform
    else:  # dark and desaturated, so that the class colour stands out (appearance, mixed)
        bg_colour = _hsv_to_rgb(bg_uniform[:, 0], 0.3 * bg_uniform[:, 1], 0.05 + 0.3 * bg_uniform[:, 2])
    colours = np.stack(
        [_contrasting(rng, bg_colour), _contrasting(rng, bg_colour)], axis=1
    )  # (n, obj, tone, 3)
    bg_kind, bg_angle = rng.integers(0, 4, n), rng.uniform(0, np.pi, n)
    bg_freq, bg_phase = rng.uniform(1.0, 3.0, n), rng.uniform(0, 2 * np.pi, (n, 2))
    bg_amp, noise_std = rng.uniform(0.03, 0.1, n), rng.uniform(0.01, 0.03, n)
    hue_jitter, sat, val = rng.uniform(-0.02, 0.02, n), rng.uniform(0.65, 1.0, n), rng.uniform(0.75, 1.0, n)

    tau = np.linspace(-0.5, 0.5, frames) if frames > 1 else np.zeros(1)
    if preset == "motion":
        path = _motion_paths(labels, tau, p)
    elif preset == "mixed":  # the class sets the motion and the main object's colour; its shape is random
        motion, hue = (np.array(a) for a in zip(*map(_mixed_class, labels), strict=True))
        path = _motion_paths(motion, tau, p)
        for tone, (s, v) in enumerate(((sat, val), (sat * 0.6, val * 0.8))):
            colours[:, 0, tone] = _hsv_to_rgb((hue / len(HUES) + hue_jitter) % 1, s, v)
    else:  # the class sets shape, colour and background pattern; the small drift and spin are random
        hue, shp, pattern = (np.array(a) for a in zip(*map(_appearance_class, labels), strict=True))
        shape[:, 0] = shp
        for tone, (s, v) in enumerate(((sat, val), (sat * 0.6, val * 0.8))):
            colours[:, 0, tone] = _hsv_to_rgb((hue / len(HUES) + hue_jitter) % 1, s, v)
        bg_kind = np.array([0, 0, 1, 2])[pattern]
        bg_angle = np.where(pattern == 0, np.pi / 2, np.where(pattern == 1, 0.0, bg_angle))
        bg_amp = bg_amp + 0.1
        path = _static_paths(p, frames)
        drift = 0.3 * p["amount"][:, None] * tau
        path["cx1"] += drift * np.cos(p["heading"])[:, None]
        path["cy1"] += drift * np.sin(p["heading"])[:, None]
        path["th1"] += spin[:, None] * tau

    coords = ((np.arange(size) + 0.5) / size * 2 - 1).astype(np.float32)
    grid = np.meshgrid(coords, coords, indexing="xy")
    videos = np.empty((n, frames, size, size, 3), dtype=np.uint8)
    noise_rng = np.random.default_rng([seed, 1])
    chunk = max(1, 2**22 // (frames * size * size * 3))  # about 16 MiB of float32 per chunk
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        pattern_img = _background(bg_kind[sl], bg_angle[sl], bg_freq[sl], bg_phase[sl], grid)
        bg = bg_colour[sl][:, None, None, :] + (bg_amp[sl][:, None, None] * pattern_img)[..., None]
        canvas = np.repeat(bg.astype(np.float32)[:, None], frames, axis=1)
        for j in (1, 0):  # the second object first, the main one on top
            cx, cy, sc, th = (path[f"{k}{j + 1}"][sl] for k in ("cx", "cy", "sc", "th"))
            tex = (texture[0][sl, j], texture[1][sl, j])
            _render_objects(canvas, cx, cy, sc, th, shape[sl, j], colours[sl, j], tex, grid)
        noise = noise_rng.standard_normal(canvas.shape, dtype=np.float32)
        canvas += noise * noise_std[sl].astype(np.float32)[:, None, None, None, None]
        canvas *= 255
        np.clip(canvas, 0, 255, out=canvas)
        videos[sl] = np.rint(canvas).astype(np.uint8)
    return videos, labels, [names[c] for c in range(num_classes)]


def _encode_mp4(path: Path, video: np.ndarray, fps: int) -> None:
    import av  # PyAV, imported here so that generating in memory does not need it

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = video.shape[2], video.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast", "threads": "1"}
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_synthetic_videos(
    out_dir: str | Path,
    preset: Preset,
    num_classes: int,
    videos_per_class: int,
    frames: int,
    size: int,
    seed: int,
    fps: int = 8,
    test_fraction: float = 0.2,
) -> Path:
    """Write the videos of `make_synthetic_videos` as H.264 mp4 files plus annotation files; returns `out_dir`.

    Layout under `out_dir`: `videos/{class_name}/{index:05d}.mp4` (index = position in the generated arrays);
    `classes.txt` (one name per line, in label order); `train.txt` / `test.txt` (`videos/.../00000.mp4 label`
    lines; the last `test_fraction` of each class's videos are test); Something-Something-V2 style
    `labels.json` (class name → index as a string) and `train.json` / `validation.json`, whose `id` is the
    video's relative path without its extension (the file is `{id}.mp4`); and `synthetic.json`, the arguments.
    """
    if size % 2:
        raise ValueError(f"size must be even for yuv420p mp4 files, got {size}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    out = Path(out_dir)
    videos, labels, names = make_synthetic_videos(preset, num_classes, videos_per_class, frames, size, seed)
    n_test = int(round(videos_per_class * test_fraction))
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    with progress_bar(f"writing {len(videos)} mp4 files", total=len(videos)) as bar:
        for i, (video, label) in enumerate(zip(videos, labels, strict=True)):
            rel = f"videos/{names[label]}/{i:05d}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            _encode_mp4(out / f"{rel}.mp4", video, fps)
            rank = i // num_classes  # position of this video within its class
            splits["test" if rank >= videos_per_class - n_test else "train"].append((rel, int(label)))
            bar.advance()

    (out / "classes.txt").write_text("".join(f"{name}\n" for name in names))
    for split, items in splits.items():
        (out / f"{split}.txt").write_text("".join(f"{rel}.mp4 {label}\n" for rel, label in items))
    (out / "labels.json").write_text(json.dumps({name: str(c) for c, name in enumerate(names)}, indent=1))
    for split, file in (("train", "train.json"), ("test", "validation.json")):
        entries = [
            {"id": rel, "label": names[label], "template": names[label], "placeholders": []}
            for rel, label in splits[split]
        ]
        (out / file).write_text(json.dumps(entries, indent=1))
    args = {
        "preset": preset,
        "num_classes": num_classes,
        "videos_per_class": videos_per_class,
        "frames": frames,
        "size": size,
        "seed": seed,
        "fps": fps,
        "test_fraction": test_fraction,
    }
    (out / "synthetic.json").write_text(json.dumps(args, indent=1))
    return out
