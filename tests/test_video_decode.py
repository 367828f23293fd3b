"""Frame readers on real tiny files: mp4/mkv written with PyAV, JPEG folders, truncated and fake videos."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from distillkit.data.video.annotations import VideoRecord
from distillkit.data.video.decode import PyAVReader, RawFramesReader, VideoReader, open_video
from distillkit.errors import DataError

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")


def numbered_frame(i: int, size: int = 32, noise: int = 0) -> np.ndarray:
    """Frame i: a bright 8×8 square in cell i of a 4×4 grid on a dark background, plus optional noise."""
    a = np.full((size, size, 3), 16, np.int64)
    r, c = divmod(i % 16, 4)
    a[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8] = 235
    if noise:
        a += np.random.default_rng(i).integers(-noise, noise + 1, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def frame_number(a: np.ndarray) -> int:
    """Inverse of `numbered_frame`: the grid cell with the brightest mean."""
    return int(a.mean(-1).reshape(4, 8, 4, 8).mean((1, 3)).argmax())


def write_video(
    path: Path, num_frames: int = 12, codec: str = "mpeg4", options: dict | None = None, noise: int = 0
) -> Path:
    """A 25-fps 32×32 video of `numbered_frame(0..num_frames-1)`; mp4 options e.g. {"movflags": "faststart"}."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {"crf": "10"}
        for i in range(num_frames):
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(numbered_frame(i, noise=noise), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_rawframes(folder: Path, num_frames: int, template: str = "img_{:05d}.jpg", start: int = 1) -> Path:
    folder.mkdir(parents=True)
    for i in range(num_frames):
        Image.fromarray(numbered_frame(i)).save(folder / template.format(start + i), quality=95)
    return folder


@pytest.mark.parametrize(("codec", "suffix"), [("mpeg4", "mp4"), ("libx264", "mp4"), ("mpeg4", "mkv")])
def test_pyav_reads_requested_frames(tmp_path: Path, codec: str, suffix: str) -> None:
    path = write_video(tmp_path / f"v.{suffix}", 12, codec)
    reader = PyAVReader(path)
    assert isinstance(reader, VideoReader)
    if suffix == "mkv":  # Matroska declares no frame count: it must be counted from the packets.
        with av.open(str(path)) as c:
            assert c.streams.video[0].frames == 0
    assert reader.num_frames == 12
    indices = [7, 1, 1, 11, 0]
    frames = reader.read(indices)
    assert frames.shape == (5, 32, 32, 3) and frames.dtype == np.uint8
    assert [frame_number(f) for f in frames] == indices
    assert [frame_number(f) for f in reader.read(np.array([3]))] == [3]
    with pytest.raises(IndexError):
        reader.read([12])


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_pyav_decodes_on_the_calling_thread(tmp_path: Path) -> None:
    """No FFmpeg thread pool: a DataLoader worker forked while one exists inherits it without its threads and can
    wait on it forever. A second thread counts this process's threads for as long as the read lasts."""
    path = write_video(tmp_path / "v.mp4", 48, "libx264")
    before = len(os.listdir("/proc/self/task"))
    counts: list[int] = []
    done = threading.Event()

    def count() -> None:  # at least once, however the threads are scheduled
        while True:
            counts.append(len(os.listdir("/proc/self/task")))
            if done.is_set():
                return

    counter = threading.Thread(target=count)
    counter.start()
    try:
        assert len(PyAVReader(path).read(list(range(48)))) == 48
    finally:
        done.set()
        counter.join()
    assert max(counts) <= before + 1  # the counting thread alone


@pytest.mark.parametrize(
    ("version", "options"), [("16.0.1", {}), ("17.0.0", {"threads": 1}), ("18.1.0", {"threads": 1})]
)
def test_one_thread_conversion_follows_the_pyav_version(monkeypatch, version: str, options: dict) -> None:
    """PyAV before 17 has no `threads` option in `to_ndarray` (and converts on the calling thread anyway)."""
    from types import SimpleNamespace

    import distillkit.data.video.decode as decode

    monkeypatch.setattr(decode, "_pyav", lambda: SimpleNamespace(__version__=version))
    decode.one_thread_conversion.cache_clear()
    try:
        assert decode.one_thread_conversion() == options
    finally:
        decode.one_thread_conversion.cache_clear()


def _cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_pyav_truncated(tmp_path: Path) -> None:
    # moov atom in front (faststart): the header still claims 12 frames after the data is cut in half;
    # noisy frames make every frame large, so the cut falls among the frames.
    path = _cut_in_half(write_video(tmp_path / "cut.mp4", 12, "mpeg4", {"movflags": "faststart"}, noise=60))
    reader = PyAVReader(path)
    assert reader.num_frames == 12
    assert [frame_number(f) for f in reader.read([0])] == [0]
    with pytest.raises(DataError) as info:
        reader.read([0, 11])
    msg = str(info.value)
    assert msg.startswith(f"{path}: truncated or corrupt: frame 11 requested but only ") and "\n" not in msg
    assert msg.endswith(" of 12 frames could be decoded")

    # The decoder meets the cut packet: the PyAV error is reported on the same line.
    path = _cut_in_half(write_video(tmp_path / "cut264.mp4", 12, "libx264", {"movflags": "faststart"}))
    with pytest.raises(DataError) as info:
        PyAVReader(path).read([0, 11])
    msg = str(info.value)
    assert msg.startswith(f"{path}: decoding failed after ") and "(PyAV InvalidDataError: " in msg
    assert "\n" not in msg

    # moov atom at the end: half a file cannot even be opened or has no decodable frames.
    path = _cut_in_half(write_video(tmp_path / "half.mp4", 12, "mpeg4"))
    with pytest.raises(DataError, match="half.mp4"):
        PyAVReader(path).read([0, 11])


def test_pyav_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(DataError) as info:
        PyAVReader(fake)
    msg = str(info.value)
    assert msg.startswith(f"{fake}: cannot open video (PyAV InvalidDataError:") and "\n" not in msg
    with pytest.raises(DataError, match="not found"):
        PyAVReader(tmp_path / "missing.mp4")


def test_rawframes(tmp_path: Path) -> None:
    folder = write_rawframes(tmp_path / "clip", 10)
    reader = RawFramesReader(folder)
    assert reader.num_frames == 10
    assert [frame_number(f) for f in reader.read([9, 0, 4, 4])] == [9, 0, 4, 4]
    other = write_rawframes(tmp_path / "clip0", 3, "{:03d}.jpg", start=0)
    assert [frame_number(f) for f in RawFramesReader(other, "{:03d}.jpg", 0).read([2, 1])] == [2, 1]

    claimed = RawFramesReader(folder, num_frames=12)  # the annotation claims more frames than exist
    with pytest.raises(DataError, match=r"img_00012\.jpg: frame 11 of 12 missing"):
        claimed.read([11])
    (folder / "img_00003.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"img_00003\.jpg: cannot read frame"):
        reader.read([2])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no frames"):
        RawFramesReader(tmp_path / "empty")


def test_open_video(tmp_path: Path) -> None:
    write_rawframes(tmp_path / "frames" / "a", 4)
    write_video(tmp_path / "b.mp4", 8)
    raw = open_video(VideoRecord("frames/a", 0, 4, "l.txt:1"), tmp_path)
    assert isinstance(raw, RawFramesReader) and raw.num_frames == 4
    video = open_video(VideoRecord(str(tmp_path / "b.mp4"), 0), root=None)
    assert isinstance(video, PyAVReader) and video.num_frames == 8
    with pytest.raises(DataError, match="video not found"):
        open_video(VideoRecord("c.mp4", 0), tmp_path)
