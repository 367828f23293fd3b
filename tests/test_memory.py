"""Exemplar selection (herding, allocation) and the on-disk exemplar memory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distillkit.data.video.decode import open_video
from distillkit.data.video.transforms import CenterCrop, Compose, RandomHorizontalFlip
from distillkit.errors import CheckpointError, ConfigError, DistillkitError
from distillkit.incremental.memory import ExemplarMemory, MemoryDataset
from distillkit.incremental.replay import fill_positions
from distillkit.incremental.selection import all_frames, allocate, herding, random_order

T = 8


def smooth_clip(seed: int, t: int = T, size: int = 16) -> np.ndarray:
    """A uint8 clip (t, size, size, 3) of smooth gradients that move over time (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(40, 120, size=3)
    frames = [
        np.stack([base[c] + 80 * x + 60 * y + 10 * (i + c) for c in range(3)], axis=-1) for i in range(t)
    ]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def colour(t: int) -> np.ndarray:
    return np.array([30 * t, 255 - 30 * t, (90 * t) % 256], dtype=np.uint8)


def colour_clip(size: int = 8) -> np.ndarray:
    """Frame t is the constant colour `colour(t)`."""
    return np.stack([np.broadcast_to(colour(t), (size, size, 3)) for t in range(T)]).copy()


def jpeg_count(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.jpg"))


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------ selection
def brute_herding(features: torch.Tensor, m: int) -> list[int]:
    x = F.normalize(features.double(), dim=1)
    mu = x.mean(0)
    picked: list[int] = []
    for _ in range(min(m, len(x))):
        best, best_d = -1, float("inf")
        for i in range(len(x)):
            if i in picked:
                continue
            d = float(((x[picked + [i]].mean(0) - mu) ** 2).sum())
            if d < best_d:
                best, best_d = i, d
        picked.append(best)
    return picked


def test_herding_hand_case() -> None:
    # Normalised: e1, e2, diagonal d, e1. mu = (0.677, 0.427). d is closest to mu; then d+e1 balances towards
    # mu better than d+e2; then adding e2 beats the duplicate e1; the duplicate comes last.
    features = torch.tensor([[3.0, 0.0], [0.0, 2.0], [5.0, 5.0], [7.0, 0.0]])
    assert herding(features, 4) == [2, 0, 1, 3]
    assert herding(features, 2) == [2, 0]
    assert herding(features, 10) == [2, 0, 1, 3]  # m clipped to n
    assert herding(features, 0) == []
    # Rows are normalised: rescaling a row changes nothing.
    assert herding(features * torch.tensor([[0.1], [9.0], [2.0], [0.5]]), 4) == [2, 0, 1, 3]


def test_herding_matches_reference_and_first_pick_is_nearest_mean() -> None:
    g = torch.Generator().manual_seed(3)
    features = torch.randn(12, 5, generator=g)
    picks = herding(features, 7)
    assert picks == brute_herding(features, 7)
    assert len(set(picks)) == 7
    x = F.normalize(features.double(), dim=1)
    assert picks[0] == int(((x - x.mean(0)) ** 2).sum(1).argmin())
    assert sorted(herding(features, 12)) == list(range(12))


def test_random_order() -> None:
    order = random_order(10, 4, np.random.default_rng(0))
    assert len(order) == 4 and len(set(order)) == 4 and all(0 <= i < 10 for i in order)
    assert order == random_order(10, 4, np.random.default_rng(0))
    assert sorted(random_order(5, 9, np.random.default_rng(1))) == [0, 1, 2, 3, 4]


def test_allocate_equal_floor_share() -> None:
    assert allocate(100, [0, 1, 2], 8) == {0: 4, 1: 4, 2: 4}  # 100 // 24 = 4, 96 frames
    assert allocate(100, [5, 7], 3) == {5: 16, 7: 16}  # 96 of 100
    assert allocate(24, [0, 1, 2], 8) == {0: 1, 1: 1, 2: 1}
    assert allocate(10, [], 8) == {}
    for budget, classes, fpe in [(100, [0, 1, 2], 8), (1000, list(range(7)), 3), (50, [1], 50)]:
        assert sum(allocate(budget, classes, fpe).values()) * fpe <= budget


def test_allocate_budget_too_small() -> None:
    with pytest.raises(ConfigError) as info:
        allocate(23, [0, 1, 2], 8)
    message = str(info.value)
    assert "23 frames" in message and "3 classes" in message and "8 frames per exemplar" in message
    assert "at least 24 frames" in message


def test_all_frames_keeps_every_position() -> None:
    assert all_frames(torch.zeros(6, 4), torch.zeros(4), 2) == [0, 1, 2, 3, 4, 5]


def test_fill_positions_nearest_earlier_on_ties() -> None:
    assert fill_positions([1, 4, 6], 8) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert fill_positions(list(range(8)), 8) == list(range(8))
    assert fill_positions([5], 8) == [0] * 8


# --------------------------------------------------------------------------------------------------- memory
def add(
    memory: ExemplarMemory, label: int, n: int, positions: list[int] | None = None, seed: int = 0
) -> None:
    kept = positions if positions is not None else list(range(T))
    memory.add_class(label, [(f"v{label}_{i}", smooth_clip(seed + i), kept) for i in range(n)])


def assert_within_budget(memory: ExemplarMemory) -> None:
    memory.check_budget()
    assert memory.frames <= memory.budget_frames
    assert memory.frames == sum(memory.frames_per_class().values()) == jpeg_count(memory.root)
    assert memory.videos == sum(len(memory.exemplars(c)) for c in memory.classes)


def test_budget_never_exceeded_over_steps(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=60, num_segments=T)
    seen: list[int] = []
    for step, (new, kept) in enumerate([([0, 1], [0, 3, 6]), ([2, 3], [1, 4, 6]), ([4], list(range(T)))]):
        classes = seen + new
        per_class = allocate(60, classes, len(kept))
        memory.reduce({c: per_class[c] * len(kept) for c in seen})
        assert_within_budget(memory)
        for c in new:
            add(memory, c, per_class[c], kept, seed=10 * step + c)
            assert_within_budget(memory)
        seen = classes
    # The last step allows 60 // (5 * 8) = 1 exemplar of 8 frames per class: the old classes keep the two
    # 3-frame exemplars that fit in 8 frames, the new class one whole clip.
    assert memory.frames_per_class() == {0: 6, 1: 6, 2: 6, 3: 6, 4: 8}
    assert memory.videos == 9


def test_add_over_budget_raises_and_writes_nothing(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=20, num_segments=T)
    add(memory, 0, 2)
    before = (memory.frames, memory.bytes_on_disk(), memory.manifest_path.read_text())
    with pytest.raises(DistillkitError, match="over the budget of 20"):
        add(memory, 1, 1)
    assert (memory.frames, memory.bytes_on_disk(), memory.manifest_path.read_text()) == before
    assert memory.classes == [0] and not (memory.root / "1").exists()
    add(memory, 1, 1, [2, 5])  # 18 frames fits
    assert_within_budget(memory)


def test_per_class_limit(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=100, num_segments=T, per_class_frames=10)
    with pytest.raises(DistillkitError, match="per-class limit of 10"):
        add(memory, 0, 2)
    add(memory, 0, 3, [0, 4, 7])
    assert memory.frames_per_class() == {0: 9}


def test_check_budget_names_excess(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=40, num_segments=T)
    add(memory, 0, 4)
    memory.check_budget()
    memory.budget_frames = 25
    with pytest.raises(DistillkitError, match="32 frames, 7 over its budget of 25"):
        memory.check_budget()


def test_reduce_keeps_priority_prefix(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=200, num_segments=T)
    positions = [[0, 7], list(range(T)), [3], [1, 2, 5], [6, 7]]
    memory.add_class(3, [(f"p{i}", smooth_clip(i), pos) for i, pos in enumerate(positions)])
    add(memory, 4, 2)
    assert [e.video_id for e in memory.exemplars(3)] == ["p0", "p1", "p2", "p3", "p4"]
    dropped = memory.reduce({3: 11})  # 2 + 8 + 1 = 11 fits; p3, p4 go (from the end)
    assert [e.video_id for e in dropped] == ["p4", "p3"]
    assert [e.video_id for e in memory.exemplars(3)] == ["p0", "p1", "p2"]
    assert [e.frames for e in memory.exemplars(3)] == [(0, 7), tuple(range(T)), (3,)]
    assert not (memory.root / "3" / "p3").exists() and not (memory.root / "3" / "p4").exists()
    assert memory.frames_per_class() == {3: 11, 4: 16}  # class 4 not named: untouched
    memory.reduce(9)  # every class: 3 keeps p0 only (p1 would make 10), 4 keeps one clip
    assert [e.video_id for e in memory.exemplars(3)] == ["p0"]
    assert [e.video_id for e in memory.exemplars(4)] == ["v4_0"]
    memory.reduce({4: 0})
    assert memory.classes == [3] and not (memory.root / "4").exists()
    assert_within_budget(memory)
    assert ExemplarMemory.load(memory.root).frames_per_class() == {3: 2}


def test_manifest_round_trip(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T, jpeg_quality=80)
    add(memory, 2, 2, [0, 3, 5])
    add(memory, 0, 3)
    memory.reduce({0: 16})
    loaded = ExemplarMemory.load(tmp_path / "mem")
    assert loaded.classes == memory.classes == [2, 0]
    for c in memory.classes:
        assert loaded.exemplars(c) == memory.exemplars(c)
    assert loaded.frames == memory.frames == 22
    assert loaded.videos == 4
    assert loaded.bytes_on_disk() == memory.bytes_on_disk() == disk_bytes(tmp_path / "mem")
    assert (loaded.budget_frames, loaded.num_segments, loaded.jpeg_quality) == (64, T, 80)
    data = json.loads(memory.manifest_path.read_text())
    assert data["version"] == 1 and data["budget_frames"] == 64 and data["num_segments"] == T
    assert data["classes"]["2"][1] == {"video_id": "v2_1", "label": 2, "frames": [0, 3, 5], "dir": "2/v2_1"}
    assert not [p for p in memory.root.iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(CheckpointError, match="already holds an exemplar memory"):
        ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T)


def test_records_read_as_rawframes(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T)
    add(memory, 1, 1, [2, 6])
    (record,) = memory.records()
    assert (record.label, record.num_frames) == (1, 2)
    frames = open_video(record).read([0, 1])
    assert frames.shape == (2, 16, 16, 3)
    assert np.abs(frames.astype(float) - smooth_clip(0)[[2, 6]]).mean() < 3


# -------------------------------------------------------------------------------------------------- dataset
def test_dataset_reads_whole_clip_back(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T)
    clip = smooth_clip(7)
    memory.add_class(5, [("whole", clip, list(range(T)))])
    dataset = MemoryDataset(memory)
    assert len(dataset) == 1 and dataset.labels == [5]
    x, label = dataset[0]
    assert label == 5 and x.shape == (T, 3, 16, 16) and x.dtype == torch.float32
    expected = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255
    assert (x - expected).abs().mean() < 0.01
    # Frame order is kept: each read frame is closest to its own original.
    dist = (x[:, None] - expected[None]).abs().mean(dim=(2, 3, 4))
    assert dist.argmin(1).tolist() == list(range(T))


def test_dataset_fills_key_frames_by_nearest_position(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T)
    memory.add_class(0, [("keys", torch.from_numpy(colour_clip()), [6, 1, 4])])  # order does not matter
    assert memory.exemplars(0)[0].frames == (1, 4, 6)
    assert memory.frames == 3 and jpeg_count(memory.root) == 3
    x, _ = MemoryDataset(memory)[0]
    palette = torch.stack([torch.from_numpy(colour(t)).float() / 255 for t in range(T)])
    got = x.mean(dim=(2, 3))  # (T, 3) mean colour of each frame
    nearest = torch.cdist(got, palette).argmin(1).tolist()
    assert nearest == [1, 1, 1, 4, 4, 4, 6, 6]  # t=2 nearer 1; t=5 ties 4/6 -> earlier


def test_dataset_transform_convention(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T)
    add(memory, 0, 1, [0, 5])
    add(memory, 1, 1, [3])
    transform = Compose([CenterCrop(8), RandomHorizontalFlip(p=1.0, flip_label_map={0: 1, 1: 0})])
    dataset = MemoryDataset(memory, transform=transform, seed=1)
    assert dataset.labels == [0, 1]
    x, label = dataset[0]
    assert x.shape == (T, 3, 8, 8) and label == 1
    plain, _ = MemoryDataset(memory, transform=CenterCrop(8))[1]  # bare transform gets wrapped
    assert plain.shape == (T, 3, 8, 8)
    assert torch.equal(plain[0], plain[-1])  # one key-frame fills the whole clip


# ------------------------------------------------------------------------------------------- bad input
def test_add_rejects_bad_exemplars(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T)
    clip = smooth_clip(0)
    bad = [
        ([("a", clip, [0, 8])], "time position 8 outside 0..7"),
        ([("a", clip, [-1])], "time position -1 outside"),
        ([("a", clip, [])], "no time positions"),
        ([("a", clip, [2, 2])], "repeated"),
        ([("a", clip, [0]), ("a", clip, [1])], "duplicate video id"),
        ([("../x", clip, [0])], "video id"),
        ([(".hidden", clip, [0])], "video id"),
        ([("a", clip[:5], [0])], "expected num_segments=8"),
        ([("a", clip.astype(np.float32), [0])], "uint8"),
    ]
    for exemplars, message in bad:
        with pytest.raises(ValueError, match=message):
            memory.add_class(0, exemplars)
    assert memory.frames == 0 and jpeg_count(memory.root) == 0
    add(memory, 0, 1)
    with pytest.raises(ValueError, match="already stored"):
        add(memory, 0, 1)


def test_bad_settings(tmp_path: Path) -> None:
    bad = [
        ({"budget_frames": -1}, "memory budget_frames: must be >= 0, got -1"),
        ({"budget_frames": True}, "memory budget_frames: must be an integer, got bool True"),
        ({"num_segments": 0}, "memory num_segments: must be >= 1, got 0"),
        ({"per_class_frames": 0}, "memory per_class_frames: must be >= 1, got 0"),
        ({"jpeg_quality": 101}, "memory jpeg_quality: must be <= 100, got 101"),
    ]
    for change, message in bad:
        with pytest.raises(ConfigError) as info:
            ExemplarMemory(tmp_path / "mem", **({"budget_frames": 10, "num_segments": T} | change))
        assert str(info.value) == message
    assert not (tmp_path / "mem").exists()  # refused before anything is written


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T)
    add(memory, 0, 2, [1, 5])
    return memory.root


def edit_manifest(root: Path, change) -> None:
    path = root / ExemplarMemory.MANIFEST
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def entry(data: dict) -> dict:
    return data["classes"]["0"][0]


@pytest.mark.parametrize(
    "directory",
    ["../x", "0/../../x", "/tmp/x", "0/../../mem/0/v0_0"],
)
def test_manifest_path_escape_rejected(saved: Path, directory: str) -> None:
    edit_manifest(saved, lambda d: entry(d).update(dir=directory))
    with pytest.raises(CheckpointError) as info:
        ExemplarMemory.load(saved)
    message = str(info.value)
    assert str(saved / "manifest.json") in message and "classes.0[0].dir" in message and "escapes" in message


def test_manifest_symlink_out_of_root_rejected(saved: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (saved / "0" / "v0_0").rename(outside)  # a folder with valid frames, but outside the memory
    os.symlink(outside, saved / "0" / "v0_0")
    with pytest.raises(
        CheckpointError, match=r"manifest\.json: classes\.0\[0\]\.dir: .*outside the memory folder"
    ):
        ExemplarMemory.load(saved)
    (saved / "0" / "v0_0").unlink()
    outside.rename(saved / "0" / "v0_0")
    assert ExemplarMemory.load(saved).videos == 2
    os.replace(saved / "0", tmp_path / "class0")  # the class folder itself is a link out
    os.symlink(tmp_path / "class0", saved / "0")
    with pytest.raises(CheckpointError, match="outside the memory folder"):
        ExemplarMemory.load(saved)


def test_manifest_symlinks_inside_root_rejected(saved: Path, tmp_path: Path) -> None:
    """A symlinked frame or exemplar folder is refused even when it points inside the memory folder."""
    frame = saved / "0" / "v0_0" / "img_00001.jpg"
    frame.unlink()
    os.symlink(saved / "0" / "v0_1" / "img_00001.jpg", frame)
    with pytest.raises(CheckpointError) as info:
        ExemplarMemory.load(saved)
    assert str(info.value) == (
        f"{saved / 'manifest.json'}: classes.0[0].frames: frame file {frame} is a symlink; frames must be real "
        "files in the memory"
    )
    os.replace(saved / "0" / "v0_0", tmp_path / "moved")
    os.symlink(saved / "0" / "v0_1", saved / "0" / "v0_0")  # a folder of valid frames, inside the memory
    with pytest.raises(CheckpointError) as info:
        ExemplarMemory.load(saved)
    assert str(info.value) == (
        f"{saved / 'manifest.json'}: classes.0[0].dir: {saved / '0' / 'v0_0'} is a symlink; exemplar folders "
        "must be real folders in the memory"
    )


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.pop("num_segments"), "num_segments: missing"),
        (lambda d: d.update(budget_frames="64"), "budget_frames: must be an integer"),
        (lambda d: d.update(budget_frames=True), "budget_frames: must be an integer"),
        (lambda d: d.update(version=2), "version: unsupported manifest version 2"),
        (lambda d: d.update(classes=[]), "classes: must be an object"),
        (lambda d: d["classes"].update(x=[]), "classes.x: class keys must be labels"),
        (lambda d: d["classes"].update({"0": {}}), "classes.0: must be a list"),
        (lambda d: d["classes"]["0"].__setitem__(0, 5), r"classes.0\[0\]: must be an object"),
        (lambda d: entry(d).pop("video_id"), r"classes.0\[0\].video_id: missing"),
        (lambda d: entry(d).update(frames=[1, 8]), r"classes.0\[0\].frames\[1\]: must be an integer in 0..7"),
        (lambda d: entry(d).update(frames=[-1, 5]), r"classes.0\[0\].frames\[0\]"),
        (lambda d: entry(d).update(frames=[5, 1]), r"classes.0\[0\].frames: time positions must be strictly"),
        (lambda d: entry(d).update(frames=[1.0, 5]), r"classes.0\[0\].frames\[0\]"),
        (lambda d: entry(d).update(frames="1 5"), r"classes.0\[0\].frames: must be a list"),
        (lambda d: entry(d).update(frames=[1, 5, 7]), r"classes.0\[0\].frames: frame file .*img_00003.jpg"),
        (lambda d: entry(d).update(label=1), r"classes.0\[0\].label: is 1"),
        (lambda d: entry(d).update(dir="0/v0_1"), r"classes.0\[0\].dir: is '0/v0_1', expected '0/v0_0'"),
        (
            lambda d: d["classes"]["0"][1].update(video_id="v0_0", dir="0/v0_0"),
            r"classes.0\[1\].video_id: dup",
        ),
        (lambda d: d.update(budget_frames=3), "holds 4 frames, 1 over its budget of 3"),
        (lambda d: d.update(per_class_frames=3), "class 0 holds 4 frames, 1 over the per-class limit of 3"),
        (lambda d: d.update(version=True), "version: must be an integer, got bool True"),
        (lambda d: d.update(per_class_frames=0), "per_class_frames: must be >= 1, got 0"),
        (lambda d: d.update(jpeg_quality=101), "jpeg_quality: must be <= 100, got 101"),
        (lambda d: d.update(jpeg_quality=None), "jpeg_quality: must be an integer, got null"),
        (lambda d: d["classes"].update({"01": []}), "classes.01: class keys must be labels"),
        (lambda d: d["classes"].update({"-1": []}), "classes.-1: class keys must be labels"),
        (lambda d: entry(d).update(frames=[]), r"classes.0\[0\].frames: must not be empty"),
        (lambda d: entry(d).update(frames=[5, 5]), r"classes.0\[0\].frames: time positions must be strictly"),
        (
            lambda d: entry(d).update(frames=[True, 5]),
            r"classes.0\[0\].frames\[0\]: must be an integer, got bool",
        ),
        (lambda d: entry(d).update(label=-1), r"classes.0\[0\].label: must be >= 0, got -1"),
        (
            lambda d: entry(d).update(video_id=".h", dir="0/.h"),
            r"classes.0\[0\].video_id: '.h' must not start",
        ),
        (
            lambda d: entry(d).update(video_id="a/b", dir="0/a/b"),
            r"classes.0\[0\].video_id: 'a/b' must not contain",
        ),
        (lambda d: entry(d).update(dir=3), r"classes.0\[0\].dir: must be a string, got int 3"),
        (
            lambda d: d.update(note="x"),
            "note: unknown key; valid keys here: version, budget_frames, num_segments",
        ),
        (
            lambda d: entry(d).update(note="x"),
            r"classes.0\[0\].note: unknown key; valid keys here: video_id, label",
        ),
        (
            lambda d: d.update(budget_frames="x", num_segments=0),
            r"budget_frames: must be an integer, got str 'x' \(and 1 more\)",
        ),
    ],
)
def test_malformed_manifest_names_key(saved: Path, change, key: str) -> None:
    edit_manifest(saved, change)
    with pytest.raises(CheckpointError, match=key) as info:
        ExemplarMemory.load(saved)
    message = str(info.value)
    assert message.startswith(f"{saved / 'manifest.json'}: ") and "\n" not in message


def test_manifest_bad_json_and_missing(saved: Path, tmp_path: Path) -> None:
    (saved / "manifest.json").write_text('{"version": 1,')
    with pytest.raises(CheckpointError, match=r"manifest\.json:1: invalid JSON"):
        ExemplarMemory.load(saved)
    with pytest.raises(CheckpointError, match="no exemplar memory manifest"):
        ExemplarMemory.load(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------- manifest format
RECORDED = Path(__file__).parent / "data" / "memory_manifest_v1.json"
"""The manifest of `recorded_memory`, written by the memory before its manifest became a pydantic model."""


def recorded_memory(root: Path) -> ExemplarMemory:
    """The memory whose manifest is `RECORDED`: a cap per class, another JPEG quality, classes out of order, a
    non-ASCII video id, a reduced class."""
    clip = np.zeros((T, 8, 8, 3), dtype=np.uint8)
    memory = ExemplarMemory(root, budget_frames=64, num_segments=T, per_class_frames=24, jpeg_quality=80,
                            jpeg_subsampling="4:2:0")  # fmt: skip
    memory.add_class(2, [("v2_0", clip, [5, 0, 3]), ("vidéo_ü 1", clip, [7])])
    memory.add_class(0, [(f"v0_{i}", clip, list(range(T))) for i in range(3)])
    memory.reduce({0: 16})
    memory.add_class(11, [("last", clip, [1, 2])])
    return memory


def test_manifest_bytes_unchanged(tmp_path: Path) -> None:
    memory = recorded_memory(tmp_path / "mem")
    assert memory.manifest_path.read_bytes() == RECORDED.read_bytes()
    assert memory.fork(tmp_path / "copy").manifest_path.read_bytes() == RECORDED.read_bytes()
    empty = ExemplarMemory(tmp_path / "empty", budget_frames=10, num_segments=T, jpeg_subsampling="4:2:0")
    assert empty.manifest_path.read_text() == (
        '{\n "version": 1,\n "budget_frames": 10,\n "num_segments": 8,\n "per_class_frames": null,\n'
        ' "jpeg_quality": 90,\n "classes": {}\n}\n'
    )


def place_frames(root: Path, manifest: dict) -> None:
    """Write `manifest` under `root` with a (blank) frame file for every position its exemplars keep."""
    root.mkdir()
    (root / ExemplarMemory.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    for entries in manifest["classes"].values():
        for e in entries:
            (root / e["dir"]).mkdir(parents=True)
            for k in range(1, len(e["frames"]) + 1):
                (root / e["dir"] / ExemplarMemory.TEMPLATE.format(k)).write_bytes(b"")


def test_recorded_manifest_loads(tmp_path: Path) -> None:
    place_frames(tmp_path / "old", json.loads(RECORDED.read_text()))
    loaded = ExemplarMemory.load(tmp_path / "old")
    expected = recorded_memory(tmp_path / "new")
    assert loaded.classes == expected.classes == [2, 0, 11]
    for c in loaded.classes:
        assert loaded.exemplars(c) == expected.exemplars(c)
    assert loaded.exemplars(2)[1].video_id == "vidéo_ü 1" and loaded.exemplars(2)[0].frames == (0, 3, 5)
    settings = (loaded.budget_frames, loaded.num_segments, loaded.per_class_frames, loaded.jpeg_quality)
    assert settings == (64, T, 24, 80)
    # Written again, it is the same file.
    assert loaded.fork(tmp_path / "copy").manifest_path.read_bytes() == RECORDED.read_bytes()


def test_manifest_optional_keys_and_empty_classes(tmp_path: Path) -> None:
    """`per_class_frames` and `jpeg_quality` may be absent (no cap, quality 90); a class listed with no exemplars
    is not a class of the memory."""
    manifest = json.loads(RECORDED.read_text())
    del manifest["per_class_frames"], manifest["jpeg_quality"]
    manifest["classes"]["5"] = []
    place_frames(tmp_path / "mem", manifest)
    loaded = ExemplarMemory.load(tmp_path / "mem")
    assert (loaded.per_class_frames, loaded.jpeg_quality) == (None, 90)
    assert loaded.classes == [2, 0, 11]


# ------------------------------------------------------------------------------------------- smaller frames
def test_smaller_frames_fit_by_pixels() -> None:
    from distillkit.incremental.memory import scaled_size, stored_frames

    assert stored_frames(1440, 1.0) == 1440
    assert stored_frames(1440, 0.5) == 5760
    assert stored_frames(1440, 0.7) == 2938  # 1440 / 0.49 = 2938.8
    assert scaled_size((32, 32), 0.7) == (22, 22)  # 22² = 484 <= 0.49 · 32² = 501.76
    assert scaled_size((240, 320), 0.5) == (120, 160)
    assert scaled_size((3, 1), 0.2) == (1, 1)


def test_a_memory_of_half_size_frames_stores_them_small_and_replays_them_at_the_videos_size(
    tmp_path: Path,
) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T, frame_scale=0.5)
    add(memory, 0, 2)
    from PIL import Image

    first = memory.exemplars(0)[0]
    assert first.size == (16, 16)
    with Image.open(memory.root / first.dir / ExemplarMemory.TEMPLATE.format(1)) as image:
        assert image.size == (8, 8)
    manifest = json.loads(memory.manifest_path.read_text())
    assert manifest["frame_scale"] == 0.5 and manifest["classes"]["0"][0]["size"] == [16, 16]
    again = ExemplarMemory.load(memory.root)
    assert again.frame_scale == 0.5 and again.exemplars(0) == memory.exemplars(0)
    clip, label = MemoryDataset(again)[0]
    assert clip.shape == (T, 3, 16, 16) and label == 0
    # a flat clip stays flat through storing small and scaling back up (JPEG aside)
    flat = ExemplarMemory(tmp_path / "flat", budget_frames=64, num_segments=T, frame_scale=0.5)
    flat.add_class(0, [("v", np.full((T, 16, 16, 3), 200, np.uint8), list(range(T)))])
    clip, _ = MemoryDataset(flat)[0]
    assert (clip * 255 - 200).abs().max() <= 2


def test_a_full_size_memory_writes_the_manifest_it_wrote_before_smaller_frames(tmp_path: Path) -> None:
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=64, num_segments=T, jpeg_subsampling="4:2:0")
    add(memory, 0, 1)
    manifest = json.loads(memory.manifest_path.read_text())
    assert "frame_scale" not in manifest and "size" not in manifest["classes"]["0"][0]
    assert list(manifest) == ["version", "budget_frames", "num_segments", "per_class_frames", "jpeg_quality",
                              "classes"]  # fmt: skip


def test_frames_keep_their_colour_at_every_pixel_unless_asked_for_4_2_0(tmp_path: Path) -> None:
    from PIL import Image, JpegImagePlugin

    def sampling(memory: ExemplarMemory) -> int:
        with Image.open(
            memory.root / memory.exemplars(0)[0].dir / ExemplarMemory.TEMPLATE.format(1)
        ) as image:
            return JpegImagePlugin.get_sampling(image)

    full = ExemplarMemory(tmp_path / "full", budget_frames=64, num_segments=T)
    add(full, 0, 1)
    assert sampling(full) == 0  # 4:4:4
    assert json.loads(full.manifest_path.read_text())["jpeg_subsampling"] == "4:4:4"
    forked = ExemplarMemory.load(full.root).fork(tmp_path / "forked")
    add(forked, 1, 1)
    assert forked.jpeg_subsampling == "4:4:4" and sampling(forked) == 0
    half = ExemplarMemory(tmp_path / "half", budget_frames=64, num_segments=T, jpeg_subsampling="4:2:0")
    add(half, 0, 1)
    assert sampling(half) == 2 and ExemplarMemory.load(half.root).jpeg_subsampling == "4:2:0"  # absent: 4:2:0
    # a sharp red/green edge: at 4:2:0 its colours bleed into each other, at 4:4:4 they stay apart
    edge = np.zeros((T, 16, 16, 3), np.uint8)
    edge[:, :, ::2, 0] = edge[:, :, 1::2, 1] = 255
    errors = []
    for name, subsampling in (("a", "4:4:4"), ("b", "4:2:0")):
        memory = ExemplarMemory(
            tmp_path / name, budget_frames=T, num_segments=T, jpeg_subsampling=subsampling
        )
        memory.add_class(0, [("v", edge, list(range(T)))])
        errors.append(
            float(
                (MemoryDataset(memory)[0][0] * 255 - torch.from_numpy(edge).permute(0, 3, 1, 2)).abs().mean()
            )
        )
    assert errors[0] < errors[1] / 2, errors


def test_a_full_size_exemplar_of_a_memory_of_smaller_frames_counts_its_pixels(tmp_path: Path) -> None:
    from PIL import Image

    from distillkit.incremental.memory import full_size_cost

    assert full_size_cost(8, 0.5) == 32 and full_size_cost(8, 0.7) == 17  # 8 / 0.49 = 16.33, rounded up
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=5 * T, num_segments=T, frame_scale=0.5)
    clips = [(f"v{i}", smooth_clip(i), list(range(T))) for i in range(2)]
    with pytest.raises(ValueError, match="full_size names videos not given: \\['w'\\]"):
        memory.add_class(0, clips, full_size={"w"})
    memory.add_class(0, clips, full_size={"v1"})
    small, full = memory.exemplars(0)
    assert small.size == (16, 16) and full.size is None
    assert (memory.cost(small), memory.cost(full)) == (T, 4 * T)
    assert memory.frames == 5 * T and memory.full_frames == T / 4 + T and memory.full_size_videos == 1
    with Image.open(memory.root / full.dir / ExemplarMemory.TEMPLATE.format(1)) as image:
        assert image.size == (16, 16)
    manifest = json.loads(memory.manifest_path.read_text())
    assert manifest["classes"]["0"][0]["size"] == [16, 16] and manifest["classes"]["0"][1]["size"] is None
    again = ExemplarMemory.load(memory.root)
    assert again.frames == 5 * T and again.exemplars(0) == memory.exemplars(0)
    assert [MemoryDataset(again)[i][0].shape for i in range(2)] == [(T, 3, 16, 16)] * 2
    with pytest.raises(DistillkitError, match="over the budget"):  # one more small clip does not fit
        memory.add_class(1, [("u", smooth_clip(5), list(range(T)))])
    assert [e.video_id for e in memory.reduce(4 * T)] == ["v1"]  # 5T > 4T: the last one goes, at its cost
    assert memory.frames == T and memory.full_size_videos == 0


def test_a_clip_at_the_stored_scale_is_what_the_memory_gives_back(tmp_path: Path) -> None:
    from distillkit.data.video.transforms import clip_to_tensor
    from distillkit.incremental.memory import at_stored_scale

    shown = at_stored_scale(smooth_clip(3), 0.5)
    assert shown.shape == (T, 16, 16, 3) and not np.array_equal(shown, smooth_clip(3))
    assert np.array_equal(at_stored_scale(smooth_clip(3), 1.0), smooth_clip(3))
    memory = ExemplarMemory(tmp_path / "mem", budget_frames=T, num_segments=T, frame_scale=0.5)
    memory.add_class(0, [("v", smooth_clip(3), list(range(T)))])
    stored, _ = MemoryDataset(memory)[0]
    assert (stored - clip_to_tensor(shown)).abs().max() <= 0.05  # the same, up to JPEG
