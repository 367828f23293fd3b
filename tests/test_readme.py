"""README.md's code blocks work as written.

Every fenced block is checked, in a fresh temporary working folder where `configs/` is the repository's (so the
`runs/…` and `data/…` paths of the README land there):

- ```python blocks are executed as they are;
- ```bash / ```sh / ```console blocks, one command line at a time (``\\`` continuations joined, comments dropped):
  `distillkit …` lines are run in this process, with the sizes shrunk by `SMALL` (the overrides of README's "A
  first run, small", put before the line's own `--set`s so that those still win) and by `SMALL_ARGS` for the data
  tools; input files a line names that a user would bring (annotation files) are made tiny first (`INPUTS`);
  `make X` lines must name a Makefile target; `torchrun … -m distillkit.cli …` lines hold placeholders (CONFIG,
  N, HOST), so only their distillkit arguments are parsed; `pip install` lines are checked to name this package.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from distillkit.cli import build_parser, run

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_IMAGES = ["data.name=synthetic", "data.synthetic.channels=1", "data.synthetic.train_per_class=8",
           "data.synthetic.test_per_class=4", "data.batch_size=16"]  # fmt: skip
_PROFILE = ["profile.latency_batches=[1]", "profile.latency_repeats=1"]
_CLIPS = ["data.num_segments=4", "data.batch_size=4", "data.synthetic.frames=4", "data.synthetic.size=16"]
_SMALL_STREAM = [*_CLIPS, "data.crop=12", "data.synthetic.num_classes=4", "data.synthetic.train_per_class=2",
                 "data.synthetic.test_per_class=1", "scenario.base=2", "scenario.increment=2",
                 "memory.budget_frames=32", "train.base.steps=1", "train.step.steps=1"]  # fmt: skip
# The `--set` overrides that make each shipped config tiny (README, "A first run, small").
SMALL: dict[str, list[str]] = {
    "configs/compress_fashion_mnist_vgg16.yaml": [*_IMAGES, "teacher.train.steps=2", "pbkd.stage.steps=1",
                                                  "pbkd.finetune.budget.steps=1", "baselines.methods=[]",
                                                  *_PROFILE],
    "configs/train_fashion_mnist_vgg16.yaml": [*_IMAGES, "model.train.steps=2"],
    "configs/train_video_synthetic_motion.yaml": [*_CLIPS, "data.synthetic.train_per_class=2",
                                                  "data.synthetic.test_per_class=1", "train.steps=1"],
    "configs/incremental_synthetic_motion.yaml": _SMALL_STREAM,
    "configs/incremental_civc_bench.yaml": _SMALL_STREAM,
}  # fmt: skip
# Arguments appended to data tools (argparse: the last value wins).
SMALL_ARGS = {("data", "synth"): ["--videos-per-class", "2", "--frames", "4", "--size", "16"]}
# Tiny stand-ins for the annotation files README's `data convert` lines read.
_SSV2_LABELS = {
    "Holding something in front of something": "0",
    "Pushing something from right to left": "1",
}
_SSV2_SPLIT = [{"id": "78687", "label": "holding a cup in front of a pot",
                "template": "Holding [something] in front of [something]", "placeholders": ["a cup", "a pot"]}]  # fmt: skip
INPUTS = {
    "labels.json": json.dumps(_SSV2_LABELS),
    "train.json": json.dumps(_SSV2_SPLIT),
    "kinetics400/train.csv": "label,youtube_id,time_start,time_end,split\nriding a bike,abc,5,15,train\n",
    "testTrainMulti_7030_splits/brush_hair_test_split1.txt": "b1.avi 1\nb2.avi 2\n",
}


def blocks() -> list[tuple[int, str, str]]:
    """(line, language, text) of every fenced block of README.md."""
    found, lines = [], README.read_text(encoding="utf-8").splitlines()
    start = language = None
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            if start is None:
                start, language = number, line[3:].strip()
            else:
                found.append((start, language, "\n".join(lines[start : number - 1]) + "\n"))
                start = None
    assert start is None, f"README.md:{start}: unclosed code block"
    return found


def command_lines(text: str) -> list[str]:
    """Shell lines of a block, continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            out.append(shlex.join(words))
    return out


def _checked(language: str) -> bool:
    return language in ("python", "bash", "sh", "console")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    for name, text in INPUTS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def run_distillkit(words: list[str]) -> None:
    """A README `distillkit …` line, shrunk: SMALL's overrides before its own, SMALL_ARGS after."""
    argv = words[1:]
    if argv[0] in ("train", "compress", "incremental"):
        small = SMALL.get(argv[1])
        assert small is not None, f"no SMALL recipe for {argv[1]}: add one (and to README's first-run note)"
        argv = [*argv[:2], *(w for o in small for w in ("--set", o)), *argv[2:]]
    argv += SMALL_ARGS.get(tuple(argv[:2]), [])
    assert run(argv) == 0, shlex.join(words)


def check_line(words: list[str]) -> None:
    if words[0] == "distillkit":
        run_distillkit(words)
    elif words[0] == "make":
        targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
        assert set(words[1:]) <= targets, f"{shlex.join(words)}: not a Makefile target"
    elif words[0] == "torchrun" or (words[0].startswith("OMP_") and "torchrun" in words):
        module = words.index("-m")
        assert words[module + 1] == "distillkit.cli"
        build_parser().parse_args(words[module + 2 :])  # CONFIG, DIR: placeholders, parsed as paths
    elif words[:2] == ["pip", "install"]:
        assert any(w.startswith("distillkit") or w.startswith("'distillkit") for w in words[2:])
    else:
        raise AssertionError(f"README shell line of an unknown kind: {shlex.join(words)}")


README_BLOCKS = [b for b in blocks() if _checked(b[1])]


@pytest.mark.parametrize("line, language, text", README_BLOCKS, ids=[f"line{b[0]}" for b in README_BLOCKS])
def test_readme_block(line: int, language: str, text: str, workdir: Path) -> None:
    if language == "python":
        exec(compile(text, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
        return
    for command in command_lines(text):
        check_line(shlex.split(command))


def test_every_block_is_checked_or_plain() -> None:
    """A block in another language would go unchecked: only the checked ones and plain text blocks are allowed."""
    assert all(_checked(language) or language == "" for _, language, _ in blocks())
    assert {language for _, language, _ in README_BLOCKS} >= {"python", "bash"}


def test_first_run_note_gives_the_recipe() -> None:
    """README's "A first run, small" lists exactly the overrides used here, per config."""
    text = README.read_text(encoding="utf-8")
    note = text[text.index("### A first run, small") :]
    note = note[: note.index("\n#", 1)]
    for config, overrides in SMALL.items():
        row = next((ln for ln in note.splitlines() if f"`{Path(config).name}`" in ln), None)
        assert row is not None, f"no row for {config} in README's first-run note"
        assert re.findall(r"`([^`]*=[^`]*)`", row) == overrides, config
