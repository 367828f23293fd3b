"""The synthetic video benchmark: determinism, time reversal, single-frame (un)informativeness, mp4 files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distillkit.data.synthetic_video import (
    MOTION_CLASSES,
    make_synthetic_videos,
    preset_classes,
    time_reversal_map,
    write_synthetic_videos,
)

DIRECTIONS = {
    "move_left": (-1, 0),
    "move_right": (1, 0),
    "move_up": (0, -1),
    "move_down": (0, 1),
    "move_up_left": (-1, -1),
    "move_down_right": (1, 1),
    "move_up_right": (1, -1),
    "move_down_left": (-1, 1),
}


@pytest.mark.parametrize("preset", ["motion", "appearance", "mixed"])
def test_shapes_balance_and_determinism(preset):
    videos, labels, names = make_synthetic_videos(preset, 5, 4, 6, 16, seed=3)
    assert videos.shape == (20, 6, 16, 16, 3) and videos.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3, 4] * 4  # interleaved
    assert names == list(preset_classes(preset)[:5])
    again, labels_again, _ = make_synthetic_videos(preset, 5, 4, 6, 16, seed=3)
    assert again.tobytes() == videos.tobytes() and np.array_equal(labels, labels_again)
    other, _, _ = make_synthetic_videos(preset, 5, 4, 6, 16, seed=4)
    assert np.abs(other.astype(int) - videos).mean() > 10
    assert videos.std() > 20  # not blank


def test_class_counts_and_errors():
    assert len(preset_classes("motion")) >= 16 and len(set(preset_classes("motion"))) == len(MOTION_CLASSES)
    assert len(set(preset_classes("appearance"))) == len(preset_classes("appearance")) >= 16
    with pytest.raises(ValueError, match="num_classes"):
        make_synthetic_videos("motion", len(MOTION_CLASSES) + 1, 1, 2, 8, 0)
    with pytest.raises(ValueError, match="preset"):
        make_synthetic_videos("texture", 2, 1, 2, 8, 0)  # type: ignore[arg-type]


def test_time_reversal_map_pairs_classes():
    full = time_reversal_map("motion")
    names = preset_classes("motion")
    assert sorted(full) == list(range(len(names)))
    assert all(full[full[c]] == c and full[c] != c for c in full)  # an involution without fixed points
    assert names[full[names.index("grow")]] == "shrink"
    assert names[full[names.index("move_left")]] == "move_right"
    assert names[full[names.index("move_then_stop")]] == "stop_then_move"
    assert time_reversal_map("motion", num_classes=3) == {0: 1, 1: 0}  # move_up's partner is not among them
    assert time_reversal_map("appearance", num_classes=4) == {0: 0, 1: 1, 2: 2, 3: 3}
    mixed, names = time_reversal_map("mixed"), preset_classes("mixed")
    assert names[mixed[names.index("blue_grow")]] == "blue_shrink"  # the partner motion in the same colour
    assert (
        "red_approach" in names and names.index("red_approach") not in mixed
    )  # "separate" is not in the preset
    assert time_reversal_map("mixed", num_classes=10) == {0: 1, 1: 0, 2: 3, 3: 2, 4: 5, 5: 4, 6: 7, 7: 6}


def test_mixed_classes_share_motions_across_colours():
    videos, labels, names = make_synthetic_videos("mixed", 18, 4, 8, 32, seed=1)
    assert names[0] == "red_move_left" and names[9] == "blue_move_left" and len(set(names)) == 18
    for c, direction, colour in ((0, (-1, 0), 0), (9, (-1, 0), 2), (1, (1, 0), 0), (10, (1, 0), 2)):
        for video in videos[labels == c]:
            assert np.allclose(_direction(video), direction, atol=0.2), (names[c], _direction(video))
            frames = video.astype(np.float32)
            moving = frames[np.abs(frames - np.median(frames, axis=0)).sum(-1) > 60]  # the moving object
            assert moving.mean(0).argmax() == colour, (names[c], moving.mean(0))  # red: R, blue: B


def _direction(video: np.ndarray) -> np.ndarray:
    """Unit direction of the moving object's centroid, from pixels: the static scene is the temporal median."""
    frames = video.astype(np.float32)
    moving = (np.abs(frames - np.median(frames, axis=0)).sum(-1) > 60).astype(np.float32)  # (T, H, W)
    ys, xs = np.mgrid[: frames.shape[1], : frames.shape[2]]
    mass = moving.sum((1, 2)) + 1e-6
    centroid = np.stack([(moving * xs).sum((1, 2)) / mass, (moving * ys).sum((1, 2)) / mass], axis=1)
    t = np.arange(len(centroid)) - (len(centroid) - 1) / 2
    slope = (t[:, None] * (centroid - centroid.mean(0))).sum(0)
    return slope / np.linalg.norm(slope)


def test_reversed_translation_moves_like_the_mapped_class():
    videos, labels, names = make_synthetic_videos("motion", 16, 4, 8, 32, seed=11)
    reversal = time_reversal_map("motion")
    checked = 0
    for video, label in zip(videos, labels, strict=True):
        name = names[label]
        if name not in DIRECTIONS:
            continue
        own, mapped = (np.array(DIRECTIONS[k], float) for k in (name, names[reversal[label]]))
        assert _direction(video) @ own / np.linalg.norm(own) > 0.9, name
        assert _direction(video[::-1]) @ mapped / np.linalg.norm(mapped) > 0.9, name
        checked += 1
    assert checked == 32


def _frame_features(videos: np.ndarray) -> np.ndarray:
    """Per-frame features (N, T, F): colour histogram, edge orientation balance and 8×8 pooled pixels."""
    n, t, s = videos.shape[:3]
    frames = videos.reshape(n * t, s, s, 3)
    q = (frames // 64).astype(np.int64)
    code = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(n * t, -1)
    hist = np.stack([np.bincount(c, minlength=64) for c in code]) / code.shape[1]
    gray = frames.astype(np.float32).mean(-1)
    gx, gy = np.abs(np.diff(gray, axis=2)).mean((1, 2)), np.abs(np.diff(gray, axis=1)).mean((1, 2))
    pooled = frames.reshape(n * t, 8, s // 8, 8, s // 8, 3).mean((2, 4)).reshape(n * t, -1) / 255
    return np.concatenate([np.sqrt(hist), (gx / (gx + gy + 1e-6))[:, None], pooled], axis=1).reshape(n, t, -1)


def _single_frame_probe_accuracy(preset: str, num_classes: int) -> float:
    """Closed-form ridge regression on single frames, trained on 70% of the videos, tested on frames of the rest."""
    videos, labels, _ = make_synthetic_videos(preset, num_classes, 30, 8, 32, seed=5)
    feats = _frame_features(videos)
    train = np.arange(len(labels)) < 0.7 * len(labels)
    x_tr, x_te = feats[train].reshape(-1, feats.shape[-1]), feats[~train].reshape(-1, feats.shape[-1])
    y_tr, y_te = np.repeat(labels[train], 8), np.repeat(labels[~train], 8)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    a_tr = np.c_[(x_tr - mu) / sd, np.ones(len(x_tr))]
    a_te = np.c_[(x_te - mu) / sd, np.ones(len(x_te))]
    w = np.linalg.solve(a_tr.T @ a_tr + 10 * np.eye(a_tr.shape[1]), a_tr.T @ np.eye(num_classes)[y_tr])
    return float(((a_te @ w).argmax(1) == y_te).mean())


def test_single_frames_tell_appearance_classes_but_not_motion_classes():
    chance = 1 / 16
    motion = _single_frame_probe_accuracy("motion", 16)
    appearance = _single_frame_probe_accuracy("appearance", 16)
    assert motion < 2 * chance, motion
    assert appearance > 10 * chance, appearance
    # mixed: one frame shows the colour (2 groups of 9 classes), not the motion
    assert _single_frame_probe_accuracy("mixed", 18) < 3 / 18


def test_write_synthetic_videos(tmp_path):
    av = pytest.importorskip("av")
    root = write_synthetic_videos(tmp_path / "synth", "motion", 3, 5, 6, 32, seed=2, fps=8)
    videos, labels, names = make_synthetic_videos("motion", 3, 5, 6, 32, seed=2)
    assert (root / "classes.txt").read_text().splitlines() == names
    train = [line.split() for line in (root / "train.txt").read_text().splitlines()]
    test = [line.split() for line in (root / "test.txt").read_text().splitlines()]
    assert len(train) == 12 and len(test) == 3  # the last 20% of each class is test
    assert sorted(int(label) for _, label in test) == [0, 1, 2]
    assert {p for p, _ in train}.isdisjoint(p for p, _ in test)
    for rel, label in train + test:
        index = int(rel.rsplit("/", 1)[1].split(".")[0])
        assert rel == f"videos/{names[int(label)]}/{index:05d}.mp4" and labels[index] == int(label)
        assert (root / rel).is_file()

    assert json.loads((root / "labels.json").read_text()) == {name: str(c) for c, name in enumerate(names)}
    validation = json.loads((root / "validation.json").read_text())
    assert [f"{e['id']}.mp4" for e in validation] == [p for p, _ in test]
    assert all(
        e["template"] == names[int(lab)] and e["placeholders"] == []
        for e, (_, lab) in zip(validation, test, strict=True)
    )
    assert len(json.loads((root / "train.json").read_text())) == 12
    assert json.loads((root / "synthetic.json").read_text())["seed"] == 2

    rel, _ = test[1]
    index = int(rel.rsplit("/", 1)[1].split(".")[0])
    with av.open(str(root / rel)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == videos[index].shape
    assert np.abs(decoded.astype(np.float32) - videos[index]).mean() < 12  # lossy, but the same video
    assert np.abs(decoded.astype(np.float32) - videos[index - 1]).mean() > 20
