"""`distillkit train`, `incremental` and `compress` under torchrun: 2 CPU processes (gloo, DDP) against one process
with the same global batch.

The equality tests train full-batch (the global batch is the whole training set), so every step of both runs
sees the same samples: DistributedSampler's shuffle is not the single-process loader's, so with smaller batches
the two runs would see different batches. Batch norm is synchronised over the global batch under DDP
(`engine.distributed.GlobalBatchNorm` on CPU), so batch statistics are those of the one-process batch, summed in
another order. In float32 that rounding can flip a ReLU or a max-pool choice that sits at a near-tie (the
synthetic images have flat backgrounds), which changes a gradient visibly; which ties flip depends on the CPU's
kernels, so a float32 equality test passes on one machine and fails on another. The runs here therefore compute
in float64 (`perf.precision: fp64`), where rounding is about 1e-16 and near-ties that close do not occur: the
weights of 1 and 2 processes then agree to 1e-12 or better, and the bound is 1e-9.

Which process wrote files is seen by an audit hook (`sys.addaudithook`, installed through a `sitecustomize` on
PYTHONPATH) recording every file opened for writing, renamed, created or removed under the run folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import TensorDataset

from distillkit.cli import main
from distillkit.engine import distributed
from distillkit.errors import ConfigError

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with gloo is unavailable",
)

CONFIG = """\
seed: 0
device: cpu
data:
  name: synthetic
  image_size: 32
  batch_size: 24          # global batch = the whole training set (3 classes x 8)
  eval_batch_size: 4      # 15 test images: shards of 7 and 8, two batches each
  synthetic: {num_classes: 3, train_per_class: 8, test_per_class: 5}
model:
  arch: vgg11
  width: 0.125
  train: {steps: 8}
  optim: {lr: 0.05}
perf: {precision: fp64}   # no float32 tie flips (module docstring)
"""

WATCH = """\
import atexit, json, os, sys

_out = os.environ["DK_WATCH_OUT"]
_log = os.path.join(os.environ["DK_WATCH_LOG"], "writes.rank" + os.environ.get("RANK", "single") + ".json")
_writes = []
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = any(c in str(mode or "") for c in "wax+") or bool((flags or 0) & _WRITE)
    elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir"):
        path, writing = args[0], True
    else:
        return
    if writing and isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(_out):
        _writes.append([event, os.fsdecode(path)])


@atexit.register
def _dump():
    with open(_log, "w") as f:
        json.dump(_writes, f)


sys.addaudithook(_hook)
"""


def _env(watch: Path, out: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")
    }
    paths = [str(watch), str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")]
    env.update(
        OMP_NUM_THREADS="1",
        DISTILLKIT_PROGRESS="0",
        PYTHONPATH=os.pathsep.join(p for p in paths if p),
        DK_WATCH_OUT=str(out),
        DK_WATCH_LOG=str(watch),
    )
    return env


def _launch(
    prefix: list[str], config: Path, out: Path, tmp: Path, *overrides: str, job: str = "train"
) -> subprocess.CompletedProcess:
    watch = tmp / f"watch-{out.name}"
    watch.mkdir()
    (watch / "sitecustomize.py").write_text(WATCH)
    cmd = [sys.executable, *prefix, "-m", "distillkit.cli", job, str(config), "--out", str(out)]
    for o in overrides:
        cmd += ["--set", o]
    proc = subprocess.run(cmd, env=_env(watch, out), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _writes(tmp: Path, out: Path, rank: str) -> list[list[str]]:
    return json.loads((tmp / f"watch-{out.name}" / f"writes.rank{rank}.json").read_text())


def _one_and_two(
    tmp: Path, text: str, *overrides: str, job: str = "train", names: tuple[str, str] = ("one", "two")
) -> tuple[Path, Path, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Run `job` on the config `text` in one process, then in two under torchrun: both folders and outputs."""
    config = tmp / f"{job}.yaml"
    config.write_text(text)
    one, two = tmp / names[0], tmp / names[1]
    single = _launch([], config, one, tmp, *overrides, job=job)
    multi = _launch(TORCHRUN, config, two, tmp, *overrides, job=job)
    return one, two, single, multi


def _max_difference(a: Path, b: Path, prefix: str = "", key: str | None = None) -> float:
    """Largest difference between two state dict files (keys starting with `prefix`; the state dict under `key`
    of a checkpoint when given)."""
    w1, w2 = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    if key is not None:
        w1, w2 = w1[key], w2[key]
    assert w1.keys() == w2.keys()  # a plain state dict: no DDP "module." prefix, BatchNorm keys as before
    return max((w1[k].double() - w2[k].double()).abs().max().item() for k in w1 if k.startswith(prefix))


TORCHRUN = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]


def test_two_processes_match_one_and_only_rank0_writes(tmp_path: Path) -> None:
    one, two, single, multi = _one_and_two(tmp_path, CONFIG)

    a, b = (json.loads((d / "report.json").read_text()) for d in (one, two))
    assert b["accuracy"] == a["accuracy"]
    assert b["train_samples"] == a["train_samples"] == 8 * 24  # every process's samples counted
    assert b["config"] == a["config"] and b["params"] == a["params"]
    diff = _max_difference(one / "model.pt", two / "model.pt")
    assert diff < 1e-9, f"weights differ by {diff:.3g}"  # measured 3e-15

    # Only rank 0 wrote, printed the summary, and both runs wrote the same files.
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert _writes(tmp_path, two, "0"), "the audit hook saw no write by rank 0"
    assert _writes(tmp_path, two, "1") == []

    def summary(proc: subprocess.CompletedProcess) -> list[str]:  # without its "(Ns training)"
        return [line.split(" (")[0] for line in proc.stdout.splitlines() if line.startswith("vgg11: top-1")]

    assert summary(multi) == summary(single) and len(summary(single)) == 1


INCREMENTAL = """\
seed: 0
device: cpu
data:
  num_segments: 4
  batch_size: 24          # every step trains full-batch: 12 clips (base), then 12 new + 6 exemplars
  eval_batch_size: 4      # 18 test clips at the end: whole batches, 8 + 10 clips
  synthetic: {num_classes: 6, train_per_class: 6, test_per_class: 3, frames: 4, size: 16}
model: {width: 0.125, shift_div: 4}
scenario: {base: 2, increment: 2}
memory: {budget_frames: 24}   # 6 clips of 4 frames: 3 a class after the base step
train: {base: {steps: 2}, step: {steps: 2}, optim: {name: sgd, lr: 0.05}}  # Adam turns rounding of near-zero gradients into ±lr
method: {name: icarl}
perf: {precision: fp64}       # no float32 tie flips (module docstring)
"""


@pytest.mark.parametrize("method", ["icarl", "civc"])
def test_incremental_on_two_processes_matches_one_process(tmp_path: Path, method: str) -> None:
    """iCaRL and civc under torchrun: DDP training over the global batch, herding on features computed in
    whole-batch shards and gathered, exemplars written by rank 0 and read back by rank 1, sharded NME and CNN
    evaluation. Same accuracy matrices, the same memory, weights to float64 rounding (measured 4e-15 for iCaRL,
    1e-12 for civc). civc, every part on, adds a cosine head, imprinting, key-frame exemplars, exemplar frames at
    half size (a quarter of the budget holds as many) with half the new clips shown at that size (drawn per clip
    from (seed, epoch, index), `data.ShownSmall`), KD, feature distillation along trajectories, class-balanced
    fine-tuning of the head and the margin ranking loss, whose mean over the global batch's old-class samples
    needs each process to divide by its share of the global count (`distributed.process_share`): a per-process
    mean left civc 1.4 apart. Herding keeps 3 of 6 clips a class: with all 6 kept it orders nearly tied
    candidates, and a memory's order seeds its clips' augmentation."""
    every_part = ("{logit_weight: 1, spatial_weight: 1, temporal_weight: 1, key_frames: 4, cbf_epochs: 1, "
                  "exemplar_scale: 0.5, small_new_clips: 0.5}")  # fmt: skip
    name = "{name: icarl}" if method == "icarl" else f"{{name: civc, options: {every_part}}}"
    text = INCREMENTAL.replace("{name: icarl}", name)
    if method == "civc":
        text = text.replace("budget_frames: 24}", "budget_frames: 6}")  # 24 frames at a quarter of the pixels
    one, two, _, _ = _one_and_two(tmp_path, text, job="incremental")
    a, b = (json.loads((d / "results.json").read_text()) for d in (one, two))
    assert b["accuracy_matrix"] == a["accuracy_matrix"] and len(a["accuracy_matrix"]) == 3
    other = "cnn" if a["classifier"] == "nme" else "nme"  # the classifier beside the own one
    assert (
        b[other]["accuracy_matrix"] == a[other]["accuracy_matrix"] and len(a[other]["accuracy_matrix"]) == 3
    )
    assert b["memory"] == a["memory"] and a["memory"]["frames"] == 24 and a["memory"]["videos"] == 6
    manifest = "memory/step_002/manifest.json"
    assert json.loads((two / manifest).read_text()) == json.loads((one / manifest).read_text())
    last = Path("checkpoints") / "step_002.pt"
    diff = _max_difference(one / last, two / last, key="model")
    assert diff < 1e-9, f"weights differ by {diff:.3g}"
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert _writes(tmp_path, two, "0"), "the audit hook saw no write by rank 0"
    assert _writes(tmp_path, two, "1") == []


COMPRESS = """\
seed: 1
device: cpu
data:
  name: synthetic
  image_size: 32
  batch_size: 48          # full batch: 3 classes x 16 training images
  eval_batch_size: 8
  synthetic: {num_classes: 3, train_per_class: 16, test_per_class: 8, channels: 1}
teacher: {arch: vgg11, width: 0.125, train: {steps: 20}}
pbkd: {stage: {steps: 2}, finetune: {enabled: true, budget: {steps: 2}}}
baselines: {methods: [kd]}
profile: {latency_batches: [1], latency_repeats: 1}
export_onnx: false
perf: {precision: fp64}   # no float32 tie flips (module docstring)
"""


def test_compress_on_two_processes_matches_one_process(tmp_path: Path) -> None:
    """PBKD under torchrun: the teacher, every stage's student block, the KD fine-tune and the baseline train in
    DDP over the global batch (each objective's trainable module, through `fit`); accuracy is evaluated on
    shards; rank 0 alone measures latency and writes. In float64 the teacher, every stage and the fine-tuned
    student match one process's to rounding (measured 5e-13 after 40 teacher steps)."""
    one, two, _, multi = _one_and_two(tmp_path, COMPRESS, job="compress")
    a, b = (json.loads((d / "report.json").read_text()) for d in (one, two))
    assert b["teacher"]["accuracy"] == a["teacher"]["accuracy"]
    assert b["training"]["teacher_samples"] == a["training"]["teacher_samples"] == 20 * 48
    assert _max_difference(one / "teacher.pt", two / "teacher.pt") < 1e-9
    assert _max_difference(one / "student.pt", two / "student.pt") < 1e-9
    assert len(b["stages"]) == len(a["stages"]) == 6  # five blocks, then the fine-tune
    for x, y in zip(
        a["stages"] + [a["student"], a["baselines"]["kd"]],
        b["stages"] + [b["student"], b["baselines"]["kd"]],
        strict=True,
    ):
        assert x["accuracy"] == y["accuracy"]
    assert b["student"]["macs"] == a["student"]["macs"] and set(b["student"]["latency_ms"]) == {"1"}
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert _writes(tmp_path, two, "0"), "the audit hook saw no write by rank 0"
    assert _writes(tmp_path, two, "1") == []
    assert multi.stdout.count("stage 1: block 0 replaced") == 1  # printed by rank 0 only


@pytest.fixture
def two_ranks(monkeypatch: pytest.MonkeyPatch):
    """Pretend to be rank `r` of 2 (no process group); call with r to switch."""

    def become(r: int) -> None:
        monkeypatch.setattr(distributed, "is_distributed", lambda: True)
        monkeypatch.setattr(distributed, "world_size", lambda: 2)
        monkeypatch.setattr(distributed, "rank", lambda: r)

    return become


def test_global_batch_must_divide_over_processes(two_ranks) -> None:
    assert distributed.per_process_batch(25, "data.batch_size") == 25  # one process: as given
    two_ranks(1)
    assert distributed.per_process_batch(24, "data.batch_size") == 12
    with pytest.raises(ConfigError, match=r"data\.batch_size: 25 is the global batch .* 2 processes"):
        distributed.per_process_batch(25, "data.batch_size")


def test_evaluation_shards_cover_the_set_once(two_ranks) -> None:
    data = TensorDataset(torch.arange(15))
    assert distributed.shard(data) is data
    parts = []
    for r in (0, 1):
        two_ranks(r)
        parts.append([int(x[0]) for x in distributed.shard(data)])
    assert parts[0] + parts[1] == list(range(15)) and [len(p) for p in parts] == [7, 8]
    for batch, sizes in ((4, [8, 7]), (8, [8, 7]), (16, [0, 15]), (5, [5, 10])):  # whole batches of `batch`
        blocks = []
        for r in (0, 1):
            two_ranks(r)
            blocks.append([int(x[0]) for x in distributed.shard(data, batch)])
        assert blocks[0] + blocks[1] == list(range(15)) and [len(b) for b in blocks] == sizes, batch
        assert len(blocks[0]) % batch == 0


def test_demo_refuses_torchrun(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--out", str(tmp_path / "demo")])
    assert exit_.value.code == 2
    assert "run the demo as one process" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
