import json
from pathlib import Path

import pytest

from distillkit.config import CompressConfig, load_config, parse_override
from distillkit.config_reference import reference
from distillkit.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_yaml(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "seed: 3\npbkd:\n  stage: {steps: 7}\n"), CompressConfig)
    assert cfg.seed == 3 and cfg.pbkd.stage.steps == 7 and cfg.pbkd.stage.num_steps(100) == 7
    assert cfg.student.ratio == 0.5


def test_overrides_parse_yaml_values(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "seed: 1\n"),
        CompressConfig,
        ["pbkd.local_weight=2.5", "blocks=[features.6, features.13]", "teacher.checkpoint=null", "seed=9"],
    )
    assert cfg.pbkd.local_weight == 2.5
    assert cfg.blocks == ["features.6", "features.13"]
    assert cfg.seed == 9
    assert parse_override("a.b=c") == (["a", "b"], "c")


def test_unknown_key_names_the_key_and_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "pbkd:\n  stage: {epochs: 1}\n  lokal_weight: 3\n"), CompressConfig)
    msg = str(err.value)
    assert "unknown key 'pbkd.lokal_weight'" in msg and "did you mean 'local_weight'" in msg
    assert "order" in msg and "finetune" in msg  # the valid keys are listed
    with pytest.raises(ConfigError, match="unknown key 'teacher.widht'.*did you mean 'width'"):
        load_config(None, CompressConfig, ["teacher.widht=0.5"])


def test_bad_values_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'student.ratio'"):
        load_config(None, CompressConfig, ["student.ratio=2"])
    with pytest.raises(ConfigError, match="'data.batch_size'"):
        load_config(None, CompressConfig, ["data.batch_size=many"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", CompressConfig)
    with pytest.raises(ConfigError, match="line 2"):
        load_config(write(tmp_path, "seed: 1\n  bad: [\n"), CompressConfig)
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(None, CompressConfig, ["seed"])


def test_reference_lists_every_key() -> None:
    text = reference(CompressConfig)
    for key in (
        "`pbkd.local_weight`",
        "`data.synthetic.num_classes`",
        "`teacher.train.epochs`",
        "`student.design`",
    ):
        assert key in text
    assert "`_base_: base.yaml`" in text and "merged key by key" in text


def test_the_reference_docs_are_what_the_code_prints() -> None:
    """docs/config-*.md and docs/methods.md are `make docs`'s output: a changed default or option shows there."""
    from distillkit.cli import _SCHEMAS, _schema
    from distillkit.config_reference import method_options_reference

    docs = Path(__file__).resolve().parents[1] / "docs"
    for job in _SCHEMAS:
        assert (docs / f"config-{job}.md").read_text() == reference(_schema(job)) + "\n", (
            f"docs/config-{job}.md"
        )
    assert (docs / "methods.md").read_text() == method_options_reference() + "\n", (
        "docs/methods.md: run make docs"
    )


def test_shipped_configs_validate() -> None:
    from distillkit.cli import preset
    from distillkit.config import load_compress_config, load_train_config
    from distillkit.incremental.config import IncrementalConfig

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("*.yaml")) + [preset("demo_compress.yaml"), preset("demo_incremental.yaml")]
    assert len(files) >= 8
    for path in files:  # raises ConfigError naming the file and key when a config is stale
        name = path.name
        if name.startswith("train_"):
            load_train_config(path)
        elif name.startswith(("incremental_", "demo_incremental")):
            load_config(path, IncrementalConfig)
        else:
            load_compress_config(path)


# ------------------------------------------------------------------------------------------ `_base_` inheritance
def test_base_files_merge_deeply_in_order_and_chain(tmp_path: Path) -> None:
    from distillkit.config import read_config

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "root.yaml").write_text("seed: 1\ndata: {name: cifar10, augment: true}\n")
    (tmp_path / "shared" / "model.yaml").write_text(
        "_base_: root.yaml\nteacher: {arch: vgg11, width: 0.5}\ndata: {batch_size: 8}\n"
    )
    (tmp_path / "other.yaml").write_text("teacher: {width: 0.25}\nblocks: [a, b, c]\n")
    child = tmp_path / "child.yaml"
    child.write_text(
        "_base_: [shared/model.yaml, other.yaml]\nseed: 5\ndata: {batch_size: 16}\nblocks: [features.6]\n"
    )
    assert read_config(child) == {
        "seed": 5,  # the child's scalar replaces the base's
        "data": {"name": "cifar10", "augment": True, "batch_size": 16},  # mappings merge key by key
        "teacher": {"arch": "vgg11", "width": 0.25},  # later bases win over earlier ones
        "blocks": ["features.6"],  # lists are replaced, not concatenated
    }
    cfg = load_config(child, CompressConfig, ["data.batch_size=2"])
    assert (cfg.seed, cfg.data.name, cfg.data.batch_size, cfg.teacher.arch) == (5, "cifar10", 2, "vgg11")


def test_a_base_key_that_is_not_a_file_name_is_refused_naming_the_file(tmp_path: Path) -> None:
    for value in ("3", "null", "[]", "[a.yaml, 2]", "{a: b.yaml}", "''"):
        path = write(tmp_path, f"_base_: {value}\nseed: 1\n")
        with pytest.raises(ConfigError) as err:
            load_config(path, CompressConfig)
        assert str(err.value).startswith(f"{path}: '_base_' must be a file name or a list of file names")
        assert "\n" not in str(err.value)


def test_a_missing_base_file_is_refused_naming_the_file_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "mid.yaml").write_text("_base_: gone.yaml\n")
    path = write(tmp_path, "_base_: mid.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, CompressConfig)
    assert (
        str(err.value)
        == f"{tmp_path / 'mid.yaml'}: base file 'gone.yaml' not found (looked for {tmp_path / 'gone.yaml'})"
    )


def test_a_cycle_of_base_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("_base_: b.yaml\nseed: 1\n")
    (tmp_path / "b.yaml").write_text("_base_: [c.yaml, a.yaml]\n")
    (tmp_path / "c.yaml").write_text("seed: 2\n")
    a, b = (tmp_path / n for n in ("a.yaml", "b.yaml"))
    with pytest.raises(ConfigError) as err:
        load_config(a, CompressConfig)
    assert str(err.value) == f"{b}: '_base_' makes a cycle: {a.resolve()} -> {b.resolve()} -> {a.resolve()}"
    (tmp_path / "self.yaml").write_text("_base_: self.yaml\n")
    with pytest.raises(ConfigError, match="self.yaml: '_base_' makes a cycle"):
        load_config(tmp_path / "self.yaml", CompressConfig)


def test_a_base_used_twice_is_no_cycle_and_bad_bases_are_named(tmp_path: Path) -> None:
    (tmp_path / "root.yaml").write_text("seed: 4\n")
    (tmp_path / "left.yaml").write_text("_base_: root.yaml\n")
    (tmp_path / "right.yaml").write_text("_base_: root.yaml\n")
    assert load_config(write(tmp_path, "_base_: [left.yaml, right.yaml]\n"), CompressConfig).seed == 4
    (tmp_path / "bad.yaml").write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'bad.yaml'} line 2: duplicate key 'seed'"):
        load_config(write(tmp_path, "_base_: bad.yaml\n"), CompressConfig)
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'empty.yaml'}: empty config"):
        load_config(write(tmp_path, "_base_: empty.yaml\n"), CompressConfig)
    (tmp_path / "loop.yaml").write_text("data: &a {synthetic: *a}\n")
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'loop.yaml'}: 'data.synthetic' contains itself"):
        load_config(
            write(tmp_path, "_base_: loop.yaml\ndata: {synthetic: {synthetic: {}}}\n"), CompressConfig
        )


def test_base_key_is_a_file_key_only(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="unknown key 'data._base_'"):
        load_config(write(tmp_path, "data: {_base_: b.yaml}\n"), CompressConfig)
    with pytest.raises(ConfigError, match="unknown key '_base_'"):
        load_config(None, CompressConfig, ["_base_=b.yaml"])


def test_train_task_may_come_from_a_base(tmp_path: Path) -> None:
    from distillkit.config import VideoTrainConfig, load_train_config

    (tmp_path / "video.yaml").write_text("task: video\nmodel: {arch: resnet20}\n")
    cfg = load_train_config(write(tmp_path, "_base_: video.yaml\nseed: 2\n"))
    assert isinstance(cfg, VideoTrainConfig) and cfg.model.arch == "resnet20" and cfg.seed == 2


RESOLVED = Path(__file__).with_name("resolved_configs.json")
"""The validated configs (`model_dump(mode="json")`) of the shipped configs that start from `configs/base/`,
recorded from their files as written out in full before they used `_base_`. A config changed on purpose is
recorded again."""


@pytest.mark.parametrize("name", sorted(json.loads(RESOLVED.read_text())))
def test_configs_that_inherit_resolve_to_what_they_were_written_out_in_full(name: str) -> None:
    from distillkit.config import load_train_config
    from distillkit.incremental.config import IncrementalConfig

    path = Path(__file__).resolve().parents[1] / name
    assert "_base_" in path.read_text()
    if path.name.startswith("train_"):
        cfg = load_train_config(path)
    elif path.name.startswith("incremental_") or path.parent.name == "civc":
        cfg = load_config(path, IncrementalConfig)
    else:
        cfg = load_config(path, CompressConfig)
    assert cfg.model_dump(mode="json") == json.loads(RESOLVED.read_text())[name]


def test_a_run_recorded_before_student_plain_resumes_only_with_the_design_it_ran() -> None:
    """A compress config recorded before `student.plain` existed ran the 1×1 restore: resuming it with today's
    default (`internal`) is refused naming the key, with `plain: restore` it compares equal."""
    from distillkit.config import check_resumable, current_config, dump_config

    recorded = dump_config(CompressConfig())
    del recorded["student"]["plain"]
    assert current_config(recorded, CompressConfig, "run")["student"]["plain"] == "restore"
    with pytest.raises(ConfigError, match=r"differs at: student\.plain\)"):
        check_resumable(recorded, CompressConfig(), Path("run"))
    check_resumable(recorded, CompressConfig(student={"plain": "restore"}), Path("run"))
    # a config that records the key keeps it: the recorded default fills only what is missing
    assert (
        current_config(dump_config(CompressConfig()), CompressConfig, "run")["student"]["plain"] == "internal"
    )
