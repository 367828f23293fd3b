"""The annotation-format and video-source registries: built-in names, a format and a source of one's own reached
by name from `distillkit data convert` and from a config, and the errors that list what is registered."""

from __future__ import annotations

import csv
import pkgutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distillkit import cli
from distillkit.config import VideoDataConfig, VideoTrainConfig, load_config
from distillkit.data import videos
from distillkit.data.synthetic_video import write_synthetic_videos
from distillkit.data.video import annotations, convert, formats, parse_list_file
from distillkit.data.video.annotations import (
    FORMATS,
    AnnotationFormat,
    PathLike,
    VideoRecord,
    format_names,
    register_format,
)
from distillkit.data.video.dataset import VideoDataset
from distillkit.data.videos import ClipArrayDataset, VideoDatasets, build_video_datasets, register_source
from distillkit.errors import ConfigError, DataError

BUILT_IN = ["hmdb51", "kinetics", "list", "rawframes", "ssv2", "ucf101"]


class CsvList(AnnotationFormat):
    """``path,class name`` rows under a header; the classes are the sorted names."""

    name = "csvlist"
    inputs = ("CSV",)
    list_source = True

    def _rows(self, path: PathLike) -> list[tuple[int, dict[str, str]]]:
        with open(path, encoding="utf-8", newline="") as f:
            return list(enumerate(csv.DictReader(f), 2))

    def class_names(self, *inputs: PathLike, **options: Any) -> list[str]:
        return sorted({row["class"] for _, row in self._rows(inputs[0])})

    def parse(self, *inputs: PathLike, **options: Any) -> list[VideoRecord]:
        index = {name: i for i, name in enumerate(self.class_names(*inputs))}
        return [VideoRecord(row["path"], index[row["class"]], None, f"{inputs[0]}:{line}") for line, row in self._rows(inputs[0])]  # fmt: skip


@pytest.fixture
def registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies of both registries, dropped after the test (with `csvlist` registered in the format registry)."""
    monkeypatch.setattr(annotations, "FORMATS", dict(annotations.FORMATS))
    monkeypatch.setattr(videos, "SOURCES", dict(videos.SOURCES))
    register_format(CsvList)


@pytest.fixture
def synth(tmp_path: Path) -> Path:
    """Two classes of three tiny mp4 videos, with `train.txt` / `test.txt` lists (one test video a class)."""
    return write_synthetic_videos(tmp_path / "synth", "motion", 2, 3, 4, 16, 0, test_fraction=0.34)


def test_the_built_in_formats_and_sources_keep_their_names_and_come_one_file_each() -> None:
    assert format_names() == BUILT_IN
    assert format_names(list_source=True) == ["list", "rawframes"]
    assert videos.source_names() == ["images", "list", "rawframes", "synthetic"]
    files = {f"{formats.__name__}.{m.name}" for m in pkgutil.iter_modules(formats.__path__)}
    assert {type(f).__module__ for f in FORMATS.values()} == files  # every file registers one, none is missed
    assert len(files) == len(FORMATS)


def test_a_registered_format_converts_with_the_generic_code(registries: None, tmp_path: Path, capsys) -> None:
    table = tmp_path / "videos.csv"
    table.write_text("path,class\nb/1.mp4,walk\na/2.mp4,run\n", encoding="utf-8")
    out, names = tmp_path / "list.txt", tmp_path / "classes.txt"
    records = convert("csvlist", table, out=out, classes_out=names)
    assert out.read_text() == "b/1.mp4 1\na/2.mp4 0\n" and names.read_text() == "run\nwalk\n"
    assert parse_list_file(out) == [
        VideoRecord(r.path, r.label, None, f"{out}:{i}") for i, r in enumerate(records, 1)
    ]

    argv = ["data", "convert", "csvlist", str(table), "--out", str(tmp_path / "cli.txt"), "--no-check"]
    assert cli.run(argv) == 0 and (tmp_path / "cli.txt").read_text() == out.read_text()
    with pytest.raises(ConfigError, match="^--split applies to hmdb51 only$"):  # options go where they belong
        cli.run([*argv, "--split", "2"])
    with pytest.raises(ConfigError, match="^--path-format applies to kinetics and ssv2 only$"):
        cli.run([*argv, "--path-format", "{id}.mp4"])
    with pytest.raises(
        DataError
    ) as err:  # the listed files are checked under --root, the format's hint given
        cli.run([*argv[:-1], "--root", str(tmp_path)])
    assert str(err.value).startswith(
        f"{tmp_path / 'b/1.mp4'}: listed video not found ({table}:2; 2 of 2 listed"
    )
    with pytest.raises(DataError, match="^format 'csvlist' needs 1 input"):
        convert("csvlist", table, table, out=out)


def test_a_list_source_format_is_read_by_name_from_a_config(registries: None, synth: Path) -> None:
    for split in ("train", "test"):
        rows = [line.rsplit(None, 1) for line in (synth / f"{split}.txt").read_text().splitlines()]
        text = "path,class\n" + "".join(f"{path},class {label}\n" for path, label in rows)
        (synth / f"{split}.csv").write_text(text, encoding="utf-8")
    keys = {
        "root": synth,
        "train_list": synth / "train.csv",
        "test_list": synth / "test.csv",
        "num_segments": 2,
    }
    cfg = load_config(
        None, VideoTrainConfig, [f"data.{k}={v}" for k, v in {"name": "csvlist", **keys}.items()]
    )
    sets = build_video_datasets(cfg.data, seed=0)
    same = build_video_datasets(VideoDataConfig(name="list", **{**keys, "train_list": synth / "train.txt",
                                                                "test_list": synth / "test.txt"}), seed=0)  # fmt: skip
    assert isinstance(sets.train, VideoDataset) and sets.num_classes == 2
    assert sets.train.labels == same.train.labels and sets.test.labels == same.test.labels
    assert [r.path for r in sets.train.records] == [r.path for r in same.train.records]
    assert np.array_equal(videos.raw_clip(sets.test, 0), videos.raw_clip(same.test, 0))

    (synth / sets.test.records[0].path).unlink()  # a missing video is found before any work, as for `list`
    with pytest.raises(DataError, match=r"data.test_list .*test.csv: 1 of 2 listed videos not found"):
        build_video_datasets(cfg.data, seed=0)


def test_a_registered_source_is_built_by_name_from_a_config(registries: None) -> None:
    @register_source("noise")
    def noise(cfg: VideoDataConfig, seed: int) -> VideoDatasets:
        videos_ = np.random.default_rng(seed).integers(0, 256, (4, 3, 8, 8, 3), dtype=np.uint8)
        labels = np.array([0, 1, 0, 1])
        clips = ClipArrayDataset(videos_, labels, cfg.num_segments, False)
        return VideoDatasets(clips, clips, 2, ["a", "b"], clips)

    cfg = load_config(None, VideoTrainConfig, ["data.name=noise", "data.num_segments=3"])
    sets = build_video_datasets(cfg.data, seed=1)
    assert sets.class_names == ["a", "b"] and sets.train[0][0].shape == (3, 3, 8, 8)
    assert videos.source_names() == ["csvlist", "images", "list", "noise", "rawframes", "synthetic"]
    with pytest.raises(ValueError, match="'noise' is empty or already registered"):
        register_source("noise")(noise)
    with pytest.raises(ValueError, match="'list' is empty or already registered"):  # a format's name is taken
        register_source("list")(noise)


def test_unknown_names_are_refused_listing_the_registered_ones(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("task: video\ndata: {name: ssv2}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, VideoTrainConfig)
    assert str(err.value) == f"{path}: 'data.name': unknown video source 'ssv2'; registered: images, list, rawframes, synthetic"  # fmt: skip
    with pytest.raises(DataError) as err:
        convert("avi", path, out=tmp_path / "l.txt")
    assert str(err.value) == f"unknown annotation format 'avi' (valid: {', '.join(BUILT_IN)})"
    with pytest.raises(ValueError, match="'ssv2' is empty or already registered"):
        register_format(type("Again", (AnnotationFormat,), {"name": "ssv2"}))
