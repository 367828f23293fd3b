"""Every failure a user can cause is one line of ours: `distillkit: error: ...` on stderr, exit status 2, no
traceback, and (where it can be known) before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import make_run, refused

from distillkit.cli import main


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any training started fails the test: the errors below must come first."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr("distillkit.jobs.train.train_images", fail)
    monkeypatch.setattr("distillkit.jobs.train.train_videos", fail)


# -------------------------------------------------------------------------------------------------- devices
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda(tmp_path, train_yaml, capsys, monkeypatch, no_training, device) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    msg = refused(capsys, "train", train_yaml, "--out", tmp_path / "run", "--set", f"device={device}")
    assert msg.startswith(f"device: '{device}' but CUDA is not available on this machine"), msg
    assert "--set device=cpu" in msg
    assert not (tmp_path / "run").exists()


def test_cuda_index_beyond_the_gpus(tmp_path, train_yaml, capsys, monkeypatch, no_training) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    msg = refused(capsys, "train", train_yaml, "--out", tmp_path / "run", "--set", "device=cuda:1")
    assert (
        msg
        == "device: 'cuda:1' but this machine has 1 CUDA GPU (cuda:0..cuda:0); use one of them, or --set device=auto"
    )


def test_device_spelling(tmp_path, train_yaml, capsys, no_training) -> None:
    msg = refused(capsys, "train", train_yaml, "--out", tmp_path / "run", "--set", "device=cudax")
    assert msg == f"{train_yaml}: 'device': Value error, device must be 'auto', 'cpu' or 'cuda[:N]'"


# ----------------------------------------------------------------------------------------- training lengths
@pytest.mark.parametrize(
    ("override", "why"),
    [
        ("model.train.epochs=inf", "Input should be a finite number"),
        ("model.train.epochs=.nan", "Input should be a finite number"),
        ("model.train.epochs=-1", "Input should be greater than 0"),
        ("model.train.epochs=0", "Input should be greater than 0"),
        ("model.train.epochs=1e9", "Input should be less than or equal to 1000000"),
        ("model.train.steps=0", "Input should be greater than 0"),
        ("model.train.steps=-1", "Input should be greater than 0"),
        ("model.train.steps=10000000000000000000000", "Input should be less than or equal to 1000000000"),
        ("model.train.steps=.inf", "Input should be a finite number"),
        ("model.optim.lr=.inf", "Input should be a finite number"),
        ("model.optim.lr=nan", "Input should be a finite number"),
        ("model.width=-.inf", "Input should be a finite number"),
    ],
)
def test_training_lengths_and_floats(tmp_path, train_yaml, capsys, no_training, override, why) -> None:
    key = override.split("=")[0]
    msg = refused(capsys, "train", train_yaml, "--out", tmp_path / "run", "--set", override)
    assert msg == f"{train_yaml}: '{key}': {why}", msg
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("job", "override"),
    [
        ("compress", "teacher.train.epochs=inf"),
        ("compress", "pbkd.stage.steps=0"),
        ("compress", "pbkd.finetune.budget.epochs=nan"),
        ("compress", "baselines.kd_temperature=.inf"),
        ("incremental", "train.base.epochs=inf"),
        ("incremental", "train.step.steps=-3"),
        ("incremental", "train.temporal_consistency.weight=.nan"),
    ],
)
def test_other_jobs_name_the_key(tmp_path, capsys, job, override) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("device: cpu\n")
    msg = refused(capsys, job, config, "--out", tmp_path / "run", "--set", override)
    assert msg.startswith(f"{config}: '{override.split('=')[0]}': Input should be"), msg
    assert not (tmp_path / "run").exists()


def test_method_options_are_finite(tmp_path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("device: cpu\nmethod: {name: podnet}\n")
    for value in (".inf", ".nan", "1e300"):
        msg = refused(
            capsys,
            "incremental",
            config,
            "--out",
            tmp_path / "run",
            "--set",
            f"method.options.cbf_epochs={value}",
        )
        assert msg.startswith("method.options of 'podnet': 'cbf_epochs': Input should be"), msg
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------ YAML files
@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n", "---\n", "null\n"])
def test_empty_config_refused(tmp_path, capsys, no_training, text) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text(text)
    msg = refused(capsys, "train", config, "--out", tmp_path / "run")
    assert (
        msg == f"{config}: empty config (no keys); write the keys to set, or '{{}}' to run with every default"
    )
    assert not (tmp_path / "run").exists()


def test_duplicate_key_refused(tmp_path, train_yaml, capsys, no_training) -> None:
    config = tmp_path / "dup.yaml"
    config.write_text("device: cpu\nmodel:\n  arch: vgg11\n  width: 0.5\n  arch: vgg16\n")
    msg = refused(capsys, "train", config, "--out", tmp_path / "run")
    assert msg == f"{config} line 5: duplicate key 'arch' (first on line 3); keep one of them"
    config.write_text("device: cpu\ndevice: cuda\n")
    msg = refused(capsys, "compress", config, "--out", tmp_path / "run")
    assert msg == f"{config} line 2: duplicate key 'device' (first on line 1); keep one of them"
    msg = refused(capsys, "train", train_yaml, "--out", tmp_path / "run", "--set", "data={a: 1, a: 2}")
    assert msg.startswith("override 'data={a: 1, a: 2}': value is not valid YAML (duplicate key 'a'"), msg


def test_merge_keys_may_be_overridden(tmp_path) -> None:
    from distillkit.config import CompressConfig, load_config

    config = tmp_path / "merge.yaml"
    config.write_text(
        "teacher:\n  optim: &o {lr: 0.1, momentum: 0.5}\npbkd:\n  optim:\n    <<: *o\n    lr: 0.2\n"
    )
    cfg = load_config(config, CompressConfig)
    assert (cfg.pbkd.optim.lr, cfg.pbkd.optim.momentum) == (0.2, 0.5)


def test_loader_stays_safe(tmp_path, capsys) -> None:
    config = tmp_path / "evil.yaml"
    config.write_text("seed: !!python/object/apply:os.system ['echo hi']\n")
    msg = refused(capsys, "train", config, "--out", tmp_path / "run")
    assert msg.startswith(f"{config} line 1: not valid YAML"), msg


# ------------------------------------------------------------------------------------------------ data tools
@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`data synth`'s output: mp4 files, list and SSv2 annotations."""
    out = tmp_path_factory.mktemp("synth") / "data"
    with pytest.raises(SystemExit) as info:
        main(["data", "synth", "--out", str(out), "--num-classes", "2", "--videos-per-class", "3", "--frames", "4",
              "--size", "16"])  # fmt: skip
    assert info.value.code == 0
    return out


@pytest.mark.parametrize(
    ("path_format", "why"),
    [
        ("{nope}.mp4", "unknown field {nope}; allowed fields: {id}"),
        ("{id.stem}.mp4", "unknown field {id.stem}; allowed fields: {id}"),
        ("{}.mp4", "unknown field {}; allowed fields: {id}"),
        ("{id", "expected '}' before end of string; allowed fields: {id}"),
        ("{id:d}.mp4", "Unknown format code 'd' for object of type 'str'; allowed fields: {id}"),
    ],
)
def test_path_format_fields_checked_first(synth, tmp_path, capsys, path_format, why) -> None:
    out = tmp_path / "list.txt"
    msg = refused(capsys, "data", "convert", "ssv2", synth / "labels.json", synth / "train.json", "--out", out,
                  "--path-format", path_format)  # fmt: skip
    assert msg == f"path format {path_format!r}: {why}"
    assert not out.exists()


def test_kinetics_path_format_lists_its_fields(tmp_path, capsys) -> None:
    csv = tmp_path / "k.csv"
    csv.write_text("label,youtube_id,time_start,time_end\nrun,abc,1,2\n")
    msg = refused(
        capsys, "data", "convert", "kinetics", csv, "--out", tmp_path / "l.txt", "--path-format", "{x}"
    )
    assert msg == (
        "path format '{x}': unknown field {x}; allowed fields: {label}, {label_}, {youtube_id}, {clip_id}, {split}"
    )


def test_ssv2_of_synth_suggests_the_extension_on_disk(synth, capsys) -> None:
    out = synth / "ssv2_train.txt"
    msg = refused(
        capsys, "data", "convert", "ssv2", synth / "labels.json", synth / "train.json", "--out", out
    )
    first = synth / "videos" / "move_left" / "00000.webm"
    assert msg == (
        f"{first}: listed video not found ({synth / 'train.json'}:2; 4 of 4 listed missing under {synth}); "
        f"{first.parent} holds 00000.mp4: pass --path-format '{{id}}.mp4', or --no-check to write the list anyway"
    )
    assert not out.exists()
    with pytest.raises(SystemExit) as info:  # as suggested
        main(["data", "convert", "ssv2", str(synth / "labels.json"), str(synth / "train.json"), "--out", str(out),
              "--path-format", "{id}.mp4"])  # fmt: skip
    assert info.value.code == 0
    assert len(out.read_text().splitlines()) == 4


def test_convert_checks_files_under_root(synth, tmp_path, capsys) -> None:
    out = tmp_path / "elsewhere" / "train.txt"
    msg = refused(capsys, "data", "convert", "list", synth / "train.txt", "--out", out)
    assert msg.startswith(f"{out.parent / 'videos'}"), msg
    assert f"4 of 4 listed missing under {out.parent}); pass --root, the folder the listed paths" in msg
    assert not out.exists()
    for extra in (["--root", str(synth)], ["--no-check"]):
        with pytest.raises(SystemExit) as info:
            main(["data", "convert", "list", str(synth / "train.txt"), "--out", str(out), *extra])
        assert info.value.code == 0
        out.unlink()
    msg = refused(
        capsys, "data", "convert", "list", synth / "train.txt", "--out", out, "--root", synth, "--no-check"
    )
    assert msg == "--root and --no-check contradict each other: pass one of them"


# ----------------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("cut", ["half", "head", "empty", "garbage"])
def test_truncated_checkpoint(tmp_path, train_yaml, capsys, cut) -> None:
    from distillkit.models import build_model

    path = tmp_path / "model.pt"
    torch.save(build_model("vgg11", 3, width=0.125).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(
        {"half": data[: len(data) // 2], "head": data[:10], "empty": b"", "garbage": b"hello" * 50}[cut]
    )
    msg = refused(capsys, "train", train_yaml, "--out", tmp_path / "run", "--set", f"model.checkpoint={path}")
    assert msg.startswith(f"{path}: truncated or corrupt checkpoint ("), msg
    assert msg.endswith("; write it again or use another file"), msg


def test_pickled_object_is_not_weights_only(tmp_path, train_yaml, capsys) -> None:
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    msg = refused(capsys, "train", train_yaml, "--out", tmp_path / "run", "--set", f"model.checkpoint={path}")
    assert msg == (
        f"{path}: not a weights-only checkpoint (it pickles objects, not only tensors); save a state dict"
    )


# ---------------------------------------------------------------------------------------------------- compare
def test_compare_out_must_be_a_file(tmp_path, capsys) -> None:
    run = make_run(tmp_path, "a", "civc", 80, 70, 10, -10, 100)
    folder = tmp_path / "tables"
    folder.mkdir()
    msg = refused(capsys, "compare", run, "--out", folder)
    assert (
        msg
        == f"--out {folder}: is a folder; compare writes one Markdown file (e.g. --out {folder / 'comparison.md'})"
    )
    (tmp_path / "file").write_text("x")
    msg = refused(capsys, "compare", run, "--out", tmp_path / "file" / "t.md")
    assert (
        msg == f"--out {tmp_path / 'file' / 't.md'}: cannot create the file ({tmp_path / 'file'} is a file)"
    )
    assert list(folder.iterdir()) == []
    with pytest.raises(SystemExit) as info:
        main(["compare", str(run), "--out", str(folder / "new" / "t.md")])
    assert info.value.code == 0 and (folder / "new" / "t.md").is_file()


# ------------------------------------------------------------------------------------- listed videos on disk
VIDEO = {
    "task": "video",
    "device": "cpu",
    "model": {"arch": "resnet18", "width": 0.125, "shift_div": 4},
    "train": {"steps": 2},
    "data": {"name": "list", "num_segments": 4, "batch_size": 4, "eval_batch_size": 8},
}


def _video_config(tmp_path: Path, data: Path, **data_keys: object) -> Path:
    import copy

    import yaml

    tree = copy.deepcopy(VIDEO)
    tree["data"].update(root=str(data), train_list=str(data / "train.txt"), test_list=str(data / "test.txt"))
    tree["data"].update(data_keys)
    path = tmp_path / "video.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture
def video_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with pytest.raises(SystemExit) as info:
        main(["data", "synth", "--out", str(data), "--num-classes", "2", "--videos-per-class", "5", "--frames", "4",
              "--size", "16", "--test-fraction", "0.4"])  # fmt: skip
    assert info.value.code == 0
    return data


@pytest.mark.parametrize("split", ["train", "test"])
def test_missing_listed_videos_fail_before_training(tmp_path, video_data, capsys, monkeypatch, split) -> None:
    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr("distillkit.models.factory.fit", no_fit)
    lines = (video_data / f"{split}.txt").read_text().splitlines()
    for line in lines[:2]:
        (video_data / line.split()[0]).unlink()
    config = _video_config(tmp_path, video_data)
    msg = refused(capsys, "train", config, "--out", tmp_path / "run")
    first, second = (line.split()[0] for line in lines[:2])
    assert msg == (
        f"data.{split}_list {video_data / f'{split}.txt'}: 2 of {len(lines)} listed videos not found under "
        f"{video_data} (first: {first}, {second}; at {video_data / f'{split}.txt'}:1); check data.root, or set "
        "data.on_error=skip to leave them out"
    )


@pytest.mark.parametrize("damage", ["garbage", "empty", "head"])
def test_unopenable_test_videos_fail_before_training(
    tmp_path, video_data, capsys, monkeypatch, damage
) -> None:
    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr("distillkit.models.factory.fit", no_fit)
    lines = (video_data / "test.txt").read_text().splitlines()
    broken = video_data / lines[1].split()[0]
    broken.write_bytes(
        {"garbage": b"not a video" * 40, "empty": b"", "head": broken.read_bytes()[:64]}[damage]
    )
    msg = refused(capsys, "train", _video_config(tmp_path, video_data), "--out", tmp_path / "run")
    assert msg.startswith(
        f"data.test_list {video_data / 'test.txt'}: 1 of {len(lines)} test videos cannot be opened (first: "
        f"{lines[1].split()[0]}, cannot open video (PyAV "
    ), msg
    assert msg.endswith(f"at {video_data / 'test.txt'}:2); fix or remove them, or set data.on_error=skip to leave "
                        "them out (data.probe_test_videos=false skips this check)"), msg  # fmt: skip


@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_bad_test_videos_skipped_once_and_logged(tmp_path, video_data, capsys, damage) -> None:
    import json

    lines = (video_data / "test.txt").read_text().splitlines()
    first = video_data / lines[0].split()[0]
    first.unlink() if damage == "missing" else first.write_bytes(b"")
    config = _video_config(tmp_path, video_data, on_error="skip")
    said = "listed videos not found under" if damage == "missing" else "test videos cannot be opened"
    with pytest.warns(RuntimeWarning, match=rf"data.test_list .*: 1 of 4 {said} .*left out"):
        with pytest.raises(SystemExit) as info:
            main(["train", str(config), "--out", str(tmp_path / "run")])
    assert info.value.code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["test_videos"] == 3
    assert [v["source"] for v in report["skipped"]["videos"]] == [f"{video_data / 'test.txt'}:1"]
    log = (tmp_path / "run" / "skipped.jsonl").read_text().splitlines()
    assert [json.loads(x)["source"] for x in log] == [f"{video_data / 'test.txt'}:1"]


def test_probe_of_test_videos_can_be_switched_off(tmp_path, video_data) -> None:
    from distillkit.config import VideoTrainConfig, load_config
    from distillkit.data.videos import build_video_datasets

    lines = (video_data / "test.txt").read_text().splitlines()
    (video_data / lines[0].split()[0]).write_bytes(b"")
    cfg = load_config(_video_config(tmp_path, video_data, probe_test_videos=False), VideoTrainConfig)
    assert len(build_video_datasets(cfg.data, 0).test) == 4  # left for the test pass to find


def test_all_listed_videos_missing(tmp_path, video_data, capsys) -> None:
    config = _video_config(tmp_path, video_data, on_error="skip", root=str(tmp_path / "nowhere"))
    msg = refused(capsys, "train", config, "--out", tmp_path / "run")
    assert msg.startswith(
        f"data.train_list {video_data / 'train.txt'}: 6 of 6 listed videos not found under "
    ), msg
    assert msg.endswith("none left to use: check data.root"), msg


# -------------------------------------------------------------------------------------------- skipped.jsonl
def test_skip_log_lists_each_video_once_with_workers(tmp_path, video_data) -> None:
    import json
    import warnings

    from torch.utils.data import DataLoader

    from distillkit.data.video import parse_list_file
    from distillkit.data.video.dataset import VideoDataset, read_skip_log

    records = parse_list_file(video_data / "train.txt")
    broken = video_data / records[1].path
    broken.write_bytes(broken.read_bytes()[:100])  # unreadable, but there
    ds = VideoDataset(records, video_data, num_segments=4, train=False, on_error="skip")
    ds.skip_log = tmp_path / "skipped.jsonl"
    # each of the two workers gets a batch holding the broken video: each skips it (its own `skipped`)
    loader = DataLoader(ds, batch_size=1, num_workers=2, sampler=[1, 1, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert len(list(loader)) == 4
    lines = ds.skip_log.read_text().splitlines()
    assert [json.loads(x)["source"] for x in lines] == [records[1].source], lines
    assert read_skip_log(ds.skip_log) == [json.loads(lines[0])]


class _ParentPid(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        return os.getppid()


def test_dataloader_workers_do_not_fork_the_test_process() -> None:
    """conftest starts workers from a fork server: a fork of this process could meet a lock held by a thread an
    earlier test left (the suite hung twice in the skip-log test above, its first test to fork workers)."""
    from torch.utils.data import DataLoader

    parents = [int(p) for p in DataLoader(_ParentPid(), batch_size=1, num_workers=2)]
    assert len(parents) == 2 and os.getpid() not in parents


def test_an_error_echoing_control_characters_stays_one_line(tmp_path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("seed: 0\n")
    with pytest.raises(SystemExit) as exit_:
        main(["compress", str(config), "--out", str(tmp_path / "o"), "--set", "baselines=\x1e0\nx"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "\\x1e0\\nx" in err  # shown escaped
