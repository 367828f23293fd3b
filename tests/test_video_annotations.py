"""Video annotation parsers: exact records for each format, and one DataError per kind of bad line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distillkit.data.video import (
    VideoRecord,
    convert,
    hmdb51_classes,
    kinetics_classes,
    parse_hmdb51,
    parse_kinetics_csv,
    parse_list_file,
    parse_rawframe_list,
    parse_ssv2,
    parse_ucf101,
    ssv2_classes,
    ucf101_classes,
    write_list,
)
from distillkit.errors import DataError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _raises(match_file: Path, line: int | None, fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert match_file.name in msg
    if line is not None:
        assert f"{match_file.name}:{line}:" in msg, msg
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------------------------- list files
def test_list_file_records(tmp_path: Path) -> None:
    f = _write(tmp_path / "train.txt", "# comment\na/b.mp4 0\n\n  my videos/clip 1.mp4\t2  \n/abs/x.mp4 1\n")
    assert parse_list_file(f, num_classes=3) == [
        VideoRecord("a/b.mp4", 0, None, f"{f}:2"),
        VideoRecord("my videos/clip 1.mp4", 2, None, f"{f}:4"),
        VideoRecord("/abs/x.mp4", 1, None, f"{f}:5"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a.mp4 0\nb.mp4\n", 2, "expected 'path label'"),
        ("a.mp4 0\n\nb.mp4 x1\n", 3, "label must be an integer"),
        ("a.mp4 1.0\n", 1, "label must be an integer"),
        ("a.mp4 0\nb.mp4 3\n", 2, "out of range (0..2)"),
        ("a.mp4 -1\n", 1, "out of range"),
        ("a.mp4 0\n# x\na.mp4 1\n", 3, "duplicate path 'a.mp4'"),
    ],
)
def test_list_file_bad_lines(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    f = _write(tmp_path / "bad list.txt", text)
    assert fragment in _raises(f, line, parse_list_file, f, num_classes=3)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    assert "file not found" in _raises(missing, None, parse_list_file, missing)
    empty = _write(tmp_path / "empty.txt", "# only a comment\n\n")
    assert "no entries" in _raises(empty, None, parse_list_file, empty)


def test_rawframe_list(tmp_path: Path) -> None:
    f = _write(tmp_path / "raw.txt", "frames/v 1 16 3\nw 8 0\n")
    assert parse_rawframe_list(f) == [
        VideoRecord("frames/v 1", 3, 16, f"{f}:1"),
        VideoRecord("w", 0, 8, f"{f}:2"),
    ]
    for text, line, fragment in [
        ("v 8 0\nw 8\n", 2, "expected 'dir num_frames label'"),
        ("v eight 0\n", 1, "frame count must be an integer"),
        ("v 0 0\n", 1, "frame count must be >= 1"),
        ("v 8 5\n", 1, "out of range"),
    ]:
        bad = _write(tmp_path / "bad_raw.txt", text)
        assert fragment in _raises(bad, line, parse_rawframe_list, bad, num_classes=5)


def test_write_list_round_trip(tmp_path: Path) -> None:
    records = [VideoRecord("a b/c.mp4", 1, 12), VideoRecord("d.mp4", 0, 9)]
    write_list(records, tmp_path / "out" / "l.txt")
    assert (tmp_path / "out" / "l.txt").read_text() == "a b/c.mp4 1\nd.mp4 0\n"
    assert [(r.path, r.label) for r in parse_list_file(tmp_path / "out" / "l.txt")] == [
        ("a b/c.mp4", 1),
        ("d.mp4", 0),
    ]
    write_list(records, tmp_path / "r.txt", with_frames=True)
    assert [(r.path, r.num_frames, r.label) for r in parse_rawframe_list(tmp_path / "r.txt")] == [
        ("a b/c.mp4", 12, 1),
        ("d.mp4", 9, 0),
    ]
    with pytest.raises(DataError, match="cannot be written"):
        write_list([VideoRecord("#x.mp4", 0, source="s.txt:4")], tmp_path / "bad.txt")


# ------------------------------------------------------------------------------------------------------ SSv2
def _ssv2_labels(tmp_path: Path) -> Path:
    labels = {
        "Holding something in front of something": "0",
        "Pushing something from left to right": "1",
        "Pushing something from right to left": "2",
    }
    return _write(tmp_path / "labels.json", json.dumps(labels, indent=1))


def test_ssv2(tmp_path: Path) -> None:
    labels = _ssv2_labels(tmp_path)
    assert ssv2_classes(labels)[2] == "Pushing something from right to left"
    split = [
        {"id": "78687", "label": "holding a cup in front of a pot", "template": "Holding [something] in front of [something]", "placeholders": ["a cup", "a pot"]},
        {"id": "42326", "label": "pushing a pen from right to left", "template": "Pushing [something] from right to left", "placeholders": ["a pen"]},
    ]  # fmt: skip
    f = _write(tmp_path / "train.json", json.dumps(split, indent=1))
    # json.dumps(indent=1): "[" on line 1, the first entry opens on line 2, the second after its 9 lines.
    assert parse_ssv2(labels, f) == [
        VideoRecord("78687.webm", 0, None, f"{f}:2"),
        VideoRecord("42326.webm", 2, None, f"{f}:11"),
    ]


def test_ssv2_errors(tmp_path: Path) -> None:
    labels = _ssv2_labels(tmp_path)
    unknown = _write(
        tmp_path / "val.json",
        '[\n{"id": "1", "template": "Pushing [something] from left to right"},\n'
        '{"id": "2", "template": "Pushing [something] from left to rihgt"}\n]',
    )
    msg = _raises(unknown, 3, parse_ssv2, labels, unknown)
    assert "unknown class name 'Pushing something from left to rihgt'" in msg and "did you mean" in msg
    dup = _write(tmp_path / "dup.json", '[{"id": "1", "template": "Holding [something] in front of [something]"},\n{"id": "1", "template": "Holding [something] in front of [something]"}]')  # fmt: skip
    assert "duplicate id '1' (first at" in _raises(dup, 2, parse_ssv2, labels, dup)
    test = _write(tmp_path / "test.json", '[\n{"id": "1420"},\n{"id": "1421"}\n]')
    assert "test split without labels is not supported" in _raises(test, 2, parse_ssv2, labels, test)
    broken = _write(tmp_path / "broken.json", '[\n{"id": "1",\n]')
    assert "invalid JSON" in _raises(broken, 3, parse_ssv2, labels, broken)
    bad_labels = _write(tmp_path / "bad_labels.json", '{\n"A": "0",\n"B": "zero"\n}')
    assert "must be an integer" in _raises(bad_labels, 3, ssv2_classes, bad_labels)
    clash = _write(tmp_path / "clash.json", '{\n"A": "0",\n"B": "0"\n}')
    assert "label 0 given to both" in _raises(clash, 3, ssv2_classes, clash)


# -------------------------------------------------------------------------------------------------- Kinetics
def test_kinetics(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "val.csv",
        "label,youtube_id,time_start,time_end,split\n"
        "riding a bike,abc,5,15,val\n"
        '"abseiling",x_y-z,0,10,val\n'
        "riding a bike,abc,20,30,val\n",
    )
    assert kinetics_classes(f) == ["abseiling", "riding a bike"]
    assert parse_kinetics_csv(f) == [
        VideoRecord("riding a bike/abc_000005_000015.mp4", 1, None, f"{f}:2"),
        VideoRecord("abseiling/x_y-z_000000_000010.mp4", 0, None, f"{f}:3"),
        VideoRecord("riding a bike/abc_000020_000030.mp4", 1, None, f"{f}:4"),
    ]
    given = parse_kinetics_csv(
        f, classes=["zumba", "riding a bike", "abseiling"], path_format="{split}/{clip_id}.mp4"
    )
    assert [(r.path, r.label) for r in given] == [
        ("val/abc_000005_000015.mp4", 1),
        ("val/x_y-z_000000_000010.mp4", 2),
        ("val/abc_000020_000030.mp4", 1),
    ]
    assert (
        parse_kinetics_csv(f, path_format="{label_}/{clip_id}.mp4")[0].path
        == "riding_a_bike/abc_000005_000015.mp4"
    )


def test_kinetics_errors(tmp_path: Path) -> None:
    header = "label,youtube_id,time_start,time_end\n"
    f = _write(tmp_path / "k.csv", header + "a,id1,0,10\nb,id2,x,10\n")
    assert "time_start must be an integer" in _raises(f, 3, parse_kinetics_csv, f)
    f = _write(tmp_path / "k.csv", header + "a,id1,0,10\na,id1,0,10\n")
    assert "duplicate clip 'id1_000000_000010'" in _raises(f, 3, parse_kinetics_csv, f)
    f = _write(tmp_path / "k.csv", header + "a,id1,0,10\nc,id2,0,10\n")
    assert "unknown class name 'c'" in _raises(f, 3, parse_kinetics_csv, f, classes=["a", "b"])
    f = _write(tmp_path / "k.csv", header + "a,id1,0,10\na,id2,0\n")
    assert "comma-separated fields" in _raises(f, 3, parse_kinetics_csv, f)
    f = _write(tmp_path / "k.csv", "label,id,start,end\na,id1,0,10\n")
    assert "header" in _raises(f, 1, parse_kinetics_csv, f)


# -------------------------------------------------------------------------------------------- UCF101, HMDB51
def test_ucf101(tmp_path: Path) -> None:
    ind = _write(tmp_path / "classInd.txt", "1 ApplyEyeMakeup\r\n2 Archery\r\n")
    assert ucf101_classes(ind) == ["ApplyEyeMakeup", "Archery"]
    train = _write(tmp_path / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g01_c01.avi 2\n")  # fmt: skip
    assert parse_ucf101(ind, train) == [
        VideoRecord("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0, None, f"{train}:1"),
        VideoRecord("Archery/v_Archery_g01_c01.avi", 1, None, f"{train}:2"),
    ]
    test = _write(tmp_path / "testlist01.txt", "Archery/v_Archery_g02_c01.avi\nApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")  # fmt: skip
    assert [(r.path, r.label) for r in parse_ucf101(ind, test)] == [
        ("Archery/v_Archery_g02_c01.avi", 1),
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0),
    ]


def test_ucf101_errors(tmp_path: Path) -> None:
    ind = _write(tmp_path / "classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n")
    for text, line, fragment in [
        ("Archery/a.avi 2\nArchery/b.avi 3\n", 2, "label 3 out of range (1..2"),
        ("Archery/a.avi 2\nArchery/b.avi 1\n", 2, "label 1 is 'ApplyEyeMakeup' but the folder is 'Archery'"),
        ("Archery/a.avi\nBowling/b.avi\n", 2, "unknown class name 'Bowling'"),
        ("Archery/a.avi 2\nArchery/a.avi 2\n", 2, "duplicate video"),
        ("Archery/a.avi 2 extra\n", 1, "expected"),
    ]:
        split = _write(tmp_path / "split.txt", text)
        assert fragment in _raises(split, line, parse_ucf101, ind, split)
    bad_ind = _write(tmp_path / "classInd_bad.txt", "1 A\n3 B\n")
    assert "index 2 is missing" in _raises(bad_ind, 2, ucf101_classes, bad_ind)
    bad_ind = _write(tmp_path / "classInd_bad.txt", "1 A\none B\n")
    assert "class index must be an integer" in _raises(bad_ind, 2, ucf101_classes, bad_ind)


def test_hmdb51(tmp_path: Path) -> None:
    d = tmp_path / "splits"
    d.mkdir()
    _write(d / "brush_hair_test_split1.txt", "b1.avi 1 \nb2.avi 2 \nb3.avi 0 \n")
    _write(d / "cartwheel_test_split1.txt", "c1.avi 2\nc2.avi 1\n")
    _write(d / "cartwheel_test_split2.txt", "c1.avi 1\n")
    assert hmdb51_classes(d) == ["brush_hair", "cartwheel"]
    assert parse_hmdb51(d, split=1, subset="train") == [
        VideoRecord("brush_hair/b1.avi", 0, None, f"{d / 'brush_hair_test_split1.txt'}:1"),
        VideoRecord("cartwheel/c2.avi", 1, None, f"{d / 'cartwheel_test_split1.txt'}:2"),
    ]
    assert [(r.path, r.label) for r in parse_hmdb51(d, 1, "test")] == [
        ("brush_hair/b2.avi", 0),
        ("cartwheel/c1.avi", 1),
    ]
    bad = _write(d / "cartwheel_test_split1.txt", "c1.avi 2\nc2.avi 3\n")
    assert "split id must be 0 (unused), 1 (train) or 2 (test)" in _raises(bad, 2, parse_hmdb51, d)
    assert "no split file for class 'dive'" in str(
        pytest.raises(DataError, parse_hmdb51, d, 1, "train", ["dive"]).value
    )


def test_convert(tmp_path: Path) -> None:
    ind = _write(tmp_path / "classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n")
    test = _write(tmp_path / "testlist01.txt", "Archery/v_Archery_g02_c01.avi\n")
    out, names = tmp_path / "ucf_test.txt", tmp_path / "classes.txt"
    records = convert("ucf101", ind, test, out=out, classes_out=names)
    assert out.read_text() == "Archery/v_Archery_g02_c01.avi 1\n"
    assert names.read_text() == "ApplyEyeMakeup\nArchery\n"
    assert parse_list_file(out)[0].label == records[0].label
    raw = _write(tmp_path / "raw.txt", "v 8 0\n")
    convert("rawframes", raw, out=tmp_path / "raw_out.txt")
    assert (tmp_path / "raw_out.txt").read_text() == "v 8 0\n"
    with pytest.raises(DataError, match="needs 2 input"):
        convert("ssv2", raw, out=out)
    with pytest.raises(DataError, match="unknown annotation format"):
        convert("avi", raw, out=out)
