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


def test_shipped_configs_validate() -> None:
    from distillkit.cli import preset
    from distillkit.config import load_train_config
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
            load_config(path, CompressConfig)
