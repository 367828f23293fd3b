"""TSN sampling, clip transforms and VideoDataset on real tiny mp4 files and JPEG folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from distillkit.data.video import parse_list_file
from distillkit.data.video.dataset import VideoDataset
from distillkit.data.video.sampling import segment_indices
from distillkit.data.video.transforms import (
    CenterCrop,
    Compose,
    MultiScaleCrop,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    clip_to_tensor,
    left_right_label_map,
)
from distillkit.errors import DataError

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")


# ------------------------------------------------------------------------------------------------ sampling
def test_segment_indices_test_mode() -> None:
    assert segment_indices(16, 4, train=False).tolist() == [2, 6, 10, 14]
    assert segment_indices(10, 3, train=False).tolist() == [1, 5, 8]  # L = 10/3: floor(L/2), floor(3L/2), ...
    assert segment_indices(16, 4, train=False, clips=2).tolist() == [[1, 5, 9, 13], [3, 7, 11, 15]]
    assert segment_indices(8, 8, train=False).tolist() == list(range(8))


def test_segment_indices_train_mode() -> None:
    draws = np.stack([segment_indices(10, 3, True, np.random.default_rng(s)) for s in range(200)])
    # Segments of 10 frames in 3: [0, 3), [3, 6), [6, 10); every frame of each segment is drawn.
    for k, frames in enumerate([range(0, 3), range(3, 6), range(6, 10)]):
        assert set(draws[:, k].tolist()) == set(frames)
    a = segment_indices(100, 8, True, np.random.default_rng(7))
    assert a.tolist() == segment_indices(100, 8, True, np.random.default_rng(7)).tolist()
    assert a.tolist() != segment_indices(100, 8, True, np.random.default_rng(8)).tolist()
    assert segment_indices(100, 8, True, np.random.default_rng(0), clips=3).shape == (3, 8)


def test_segment_indices_short_videos() -> None:
    assert segment_indices(3, 5, train=False).tolist() == [0, 1, 2, 0, 1]
    assert segment_indices(3, 5, train=True, rng=np.random.default_rng(0)).tolist() == [0, 1, 2, 0, 1]
    with pytest.raises(DataError, match=r"^list\.txt:7: video has 3 frames, fewer than num_segments=5$"):
        segment_indices(3, 5, False, short="error", source="list.txt:7")


# ---------------------------------------------------------------------------------------------- transforms
def _ramp_clip(t: int = 3, h: int = 32, w: int = 32) -> np.ndarray:
    """uint8 (T, H, W, 3): pixel value 4·x + t in channel 0 (left-right asymmetric), y in channel 1."""
    x = np.zeros((t, h, w, 3), np.uint8)
    x[..., 0] = (np.arange(w) * 4)[None, None, :] + np.arange(t)[:, None, None]
    x[..., 1] = np.arange(h)[None, :, None]
    return x


def test_clip_to_tensor_and_center_crop() -> None:
    clip = _ramp_clip()
    x = clip_to_tensor(clip)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    assert torch.equal(x, torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255)
    assert torch.equal(clip_to_tensor(torch.from_numpy(clip)), x)
    assert torch.equal(CenterCrop(16)(clip), x[..., 8:24, 8:24])
    assert CenterCrop(40)(clip).shape == (3, 3, 40, 40)


def test_resize_and_normalize() -> None:
    clip = _ramp_clip(h=32, w=48)
    assert Resize(16)(clip).shape == (3, 3, 16, 24)
    assert Resize(16)(_ramp_clip(h=48, w=32)).shape == (3, 3, 24, 16)
    out = Normalize((0.5, 0.25, 0.0), (0.5, 0.5, 1.0))(clip)
    x = clip_to_tensor(clip)
    assert torch.allclose(out[:, 0], (x[:, 0] - 0.5) / 0.5) and torch.allclose(
        out[:, 1], (x[:, 1] - 0.25) / 0.5
    )


@pytest.mark.parametrize("crop", [MultiScaleCrop(16), RandomResizedCrop(16, scale=(0.2, 0.6))])
def test_random_crops_same_for_all_frames_and_seeded(crop) -> None:
    clip = np.repeat(_ramp_clip(t=1), 4, axis=0)  # identical frames → identical crops
    out = crop(clip, np.random.default_rng(3))
    assert out.shape == (4, 3, 16, 16)
    assert all(torch.equal(out[0], out[i]) for i in range(4))
    assert torch.equal(out, crop(clip, np.random.default_rng(3)))
    assert torch.equal(
        crop(clip, torch.Generator().manual_seed(5)), crop(clip, torch.Generator().manual_seed(5))
    )
    outs = {crop(clip, np.random.default_rng(s)).sum().item() for s in range(10)}
    assert len(outs) > 1


def test_multiscale_crop_without_resize_is_a_window() -> None:
    clip = _ramp_clip(t=2)
    x = clip_to_tensor(clip)
    out = MultiScaleCrop(32, scales=(1,))(clip, np.random.default_rng(0))
    assert torch.equal(out, x)
    small = MultiScaleCrop(24, scales=(0.75,), fix_crop=True)(clip, np.random.default_rng(1))
    # A 24×24 window of the 32×32 frame (no resize): find its offset from the ramps.
    top, left = round(small[0, 1, 0, 0].item() * 255), round(small[0, 0, 0, 0].item() * 255) // 4
    assert torch.equal(small, x[..., top : top + 24, left : left + 24])
    assert top in (0, 2, 4, 6, 8) and left in (0, 2, 4, 6, 8)


def test_flip_swaps_labels_per_map() -> None:
    names = [
        "Holding something",
        "Pushing something from left to right",
        "Pushing something from right to left",
        "Turning the camera left while filming something",
        "Turning the camera right while filming something",
        "Moving something left",
    ]
    mapping = left_right_label_map(names)
    assert mapping == {1: 2, 2: 1, 3: 4, 4: 3}
    clip = _ramp_clip()
    x = clip_to_tensor(clip)
    flip = RandomHorizontalFlip(p=1.0, flip_label_map=mapping)
    out, label = flip(clip, 1)
    assert label == 2 and torch.equal(out, x.flip(-1))
    assert flip(clip, 2)[1] == 1 and flip(clip, 0)[1] == 0 and flip(clip, 5)[1] == 5
    out, label = RandomHorizontalFlip(p=0.0, flip_label_map=mapping)(clip, 1)
    assert label == 1 and torch.equal(out, x)
    half = RandomHorizontalFlip(0.5, mapping)
    labels = [half(clip, 1, np.random.default_rng(s))[1] for s in range(40)]
    assert set(labels) == {1, 2}
    assert labels == [half(clip, 1, np.random.default_rng(s))[1] for s in range(40)]


def test_compose_threads_label() -> None:
    pipeline = Compose(
        [Resize(16), RandomHorizontalFlip(1.0, {0: 1}), CenterCrop(8), Normalize((0.5,) * 3, (0.5,) * 3)]
    )
    out, label = pipeline(_ramp_clip(), 0, torch.Generator().manual_seed(0))
    assert out.shape == (3, 3, 8, 8) and label == 1
    assert out.min() >= -1 and out.max() <= 1


# ------------------------------------------------------------------------------------------------- dataset
def numbered_frame(i: int) -> np.ndarray:
    """Frame i: a bright 8×8 square in cell i of a 4×4 grid of a 32×32 frame."""
    a = np.full((32, 32, 3), 16, np.uint8)
    r, c = divmod(i % 16, 4)
    a[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8] = 235
    return a


def frame_numbers(clip: torch.Tensor) -> list[int]:
    """Frame numbers of a float (T, C, 32, 32) clip of `numbered_frame`s."""
    return clip.mean(1).reshape(-1, 4, 8, 4, 8).mean((2, 4)).flatten(1).argmax(1).tolist()


def write_video(path: Path, num_frames: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for i in range(num_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(numbered_frame(i), format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture
def video_root(tmp_path: Path) -> Path:
    """Four good videos (two mp4, one rawframe folder, one short mp4), a fake mp4, and list files."""
    write_video(tmp_path / "a.mp4", 12)
    write_video(tmp_path / "b c.mp4", 8)
    frames = tmp_path / "frames" / "d"
    frames.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(numbered_frame(i)).save(frames / f"img_{i + 1:05d}.jpg", quality=95)
    write_video(tmp_path / "short.mp4", 3)
    (tmp_path / "fake.mp4").write_text("not a video\n")
    (tmp_path / "good.txt").write_text("a.mp4 0\nb c.mp4 1\nframes/d 2\n")
    (tmp_path / "bad.txt").write_text("a.mp4 0\nfake.mp4 1\nmissing.mp4 1\nb c.mp4 2\n")
    return tmp_path


def test_dataset_test_mode_reads_segment_centres(video_root: Path) -> None:
    ds = VideoDataset(parse_list_file(video_root / "good.txt"), video_root, num_segments=4, train=False)
    assert len(ds) == 3 and ds.labels == [0, 1, 2]
    expected = {0: [1, 4, 7, 10], 1: [1, 3, 5, 7], 2: [1, 3, 6, 8]}  # 12, 8 and 10 frames
    for i in range(3):
        clip, label = ds[i]
        assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.float32 and label == i
        assert frame_numbers(clip) == expected[i]
    multi = VideoDataset(ds.records, video_root, 4, train=False, clips=2)
    assert frame_numbers(multi[0][0]) == [0, 3, 6, 9, 2, 5, 8, 11]


def test_dataset_train_mode_is_seeded(video_root: Path) -> None:
    records = parse_list_file(video_root / "good.txt")
    transform = Compose([MultiScaleCrop(32, scales=(1,)), RandomHorizontalFlip(0.0)])
    ds = VideoDataset(records, video_root, num_segments=4, train=True, transform=transform, seed=1)
    first = [frame_numbers(ds[0][0]) for _ in range(2)]
    assert first[0] == first[1]
    assert all(3 * k <= f < 3 * k + 3 for k, f in enumerate(first[0]))  # one frame inside each segment of 3
    again = VideoDataset(records, video_root, num_segments=4, train=True, transform=transform, seed=1)
    assert frame_numbers(again[0][0]) == first[0]
    draws = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        draws.add(tuple(frame_numbers(ds[0][0])))
    assert len(draws) > 1
    batch, labels = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.shape == (3, 4, 3, 32, 32) and labels.tolist() == [0, 1, 2]


def test_dataset_fail_names_the_record(video_root: Path) -> None:
    records = parse_list_file(video_root / "bad.txt")
    ds = VideoDataset(records, video_root, num_segments=4, train=False)
    assert frame_numbers(ds[0][0]) == [1, 4, 7, 10]
    with pytest.raises(DataError) as info:
        ds[1]
    msg = str(info.value)
    assert msg.startswith(f"{video_root / 'bad.txt'}:2: {video_root / 'fake.mp4'}: cannot open video (PyAV ")
    with pytest.raises(DataError, match=r"bad\.txt:3: .*missing\.mp4: video not found"):
        ds[2]


def test_dataset_skip_counts_skips(video_root: Path) -> None:
    records = parse_list_file(video_root / "bad.txt")
    ds = VideoDataset(records, video_root, num_segments=4, train=False, on_error="skip")
    with pytest.warns(RuntimeWarning, match="skipped unreadable video"):
        clip, label = ds[1]  # fake.mp4 and missing.mp4 are replaced by "b c.mp4"
    assert label == 2 and frame_numbers(clip) == [1, 3, 5, 7]
    assert [s for s, _ in ds.skipped] == [f"{video_root / 'bad.txt'}:2", f"{video_root / 'bad.txt'}:3"]
    assert "cannot open video" in ds.skipped[0][1] and "video not found" in ds.skipped[1][1]
    assert [ds[i][1] for i in range(4)] == [0, 2, 2, 2]  # known-bad videos are skipped without new entries
    assert len(ds.skipped) == 2


def test_dataset_short_video_policy(video_root: Path) -> None:
    (video_root / "short.txt").write_text("short.mp4 0\n")
    records = parse_list_file(video_root / "short.txt")
    looped = VideoDataset(records, video_root, num_segments=4, train=False)
    assert frame_numbers(looped[0][0]) == [0, 1, 2, 0]
    strict = VideoDataset(records, video_root, num_segments=4, train=False, short="error")
    with pytest.raises(DataError, match=r"short\.txt:1: video has 3 frames, fewer than num_segments=4"):
        strict[0]
    with pytest.warns(RuntimeWarning), pytest.raises(DataError, match="none of the 1 videos could be read"):
        VideoDataset(records, video_root, 4, train=False, short="error", on_error="skip")[0]


def test_loader_workers_draw_every_epoch_as_the_main_process_does() -> None:
    """A training clip's frames and crop are drawn from (seed, epoch, index): workers must see each new epoch
    (persistent workers keep the copy of the data set made when they started, and with it epoch 0)."""
    from distillkit.config import VideoDataConfig
    from distillkit.data.videos import build_video_datasets, video_loader
    from distillkit.engine.loop import cycle

    cfg = VideoDataConfig.model_validate(
        {"num_segments": 4, "batch_size": 6, "crop": 12,
         "synthetic": {"num_classes": 2, "train_per_class": 3, "test_per_class": 1, "frames": 16, "size": 16}}
    )  # fmt: skip
    train = build_video_datasets(cfg, seed=0).train

    def three_epochs(workers: int) -> list[torch.Tensor]:
        batches = cycle(video_loader(train, cfg.model_copy(update={"num_workers": workers}), True, seed=0))
        return [next(batches)[0] for _ in range(3)]  # one batch an epoch

    inline, in_workers = three_epochs(0), three_epochs(1)
    assert not torch.equal(inline[0], inline[1])  # each epoch draws anew (the check below could fail)
    assert all(torch.equal(a, b) for a, b in zip(inline, in_workers, strict=True))
