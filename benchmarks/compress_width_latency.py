"""How the CPU speed-up of a PBKD student compares with its MACs ratio as the teacher gets wider.

    python benchmarks/compress_width_latency.py            # every family of the families benchmark
    python benchmarks/compress_width_latency.py --families VGG-16 --widths 0.25 --rounds 3

The families benchmark (`compress_families.py`) trains VGG-16 and ResNet-18 at width 0.25, where a batch-64 student
ran 0.53–0.63 of its MACs ratio faster than its teacher on one CPU thread. Latency does not depend on the weights,
so this script builds each teacher of `configs/compress_fashion_mnist_{vgg16,resnet18}.yaml` at widths 0.25, 0.5
and 1, and those of the benchmark's other two families (the CIFAR ResNet-20 of
`configs/compress_fashion_mnist_resnet20.yaml` and the user CNN of `user_cnn.py`, given by module names) at the
width it trains them at, designs each student as the families benchmark does (its MACs target and student
options: `ratio_for_macs`, `design_student`), and times both untrained, interleaved (one thread, median of
`--rounds` rounds of 3 batch-64 forward passes on the configs' 32×32 grey inputs), in PyTorch's default (NCHW)
memory format and in channels-last (`memory_format=torch.channels_last`, what `runtime.channels_last` trains in),
with per-operator times from one `torch.profiler` pass and, at the first width, each conv's time by its input and
weight shape: where a student's saved MACs do not turn into saved time. Two last tables say why thin residual
students fall short: one 3×3 conv timed at every output width from 4 to 64 channels (a CPU library that computes
output channels in blocks, as oneDNN does in blocks of 16 with AVX-512, spends on a conv of 6 output channels
what it spends on one of 16), and `blocked_ratio`, the most MACs a residual student saves with every thinned
width a multiple of 16.

Two more columns say how far a student could go. **The conv bound**: PBKD replaces each block by one that gives the
same output, so what a block spends outside its convs (pooling, batch norm, activations, the head) stays; if the
student's convs ran exactly the MACs ratio faster than the teacher's and the rest took what it takes in the
student, its speed-up would be `teacher ms / (teacher conv ms / MACs ratio + student non-conv ms)`, the conv and
non-conv shares taken from the profiled pass, the teacher's with its pools made fast as the student's are (like
for like, below). A speed-up / MACs ratio target above this bound cannot be met by thinning convs.
**onnxruntime**: both models exported to ONNX (the job's `export_onnx` path) and timed in onnxruntime's CPU
provider on one thread, the runtime a deployment would use, which fuses batch norm and ReLU into the convs.
**Like for like**: the student's max-pooling layers run as `StridedMaxPool2d` (`student.fast_pool`,
the same values as PyTorch's pool, computed faster on a CPU); the teacher is the config's model as a user has it,
so part of the NCHW speed-up is the faster pooling. The like-for-like column times the teacher with its pools
made fast too (`fast_pools`), so that the speed-up counts only what thinning the convs saves.
**Other students and runtimes** (the last table, like for like): the same MACs target met by a student whose
thinned widths are whole multiples of 16 (`student.channel_multiple: 16`), by the depthwise design
(`student.design: depthwise`, the same target), and the families' student and teacher traced, frozen and
optimised for inference by TorchScript (`torch.jit.freeze` + `torch.jit.optimize_for_inference`: batch norm folded
into the convs, oneDNN convs with fused ReLU), each timed interleaved with the teacher. Results go to
`benchmarks/results/compress_width_latency.md`.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torchvision.models.resnet import BasicBlock

from distillkit.compress.student import ratio_from_config, student_from_config
from distillkit.config import CompressConfig, load_config
from distillkit.engine.profile import count_macs, measure_latency
from distillkit.models import build_model
from distillkit.models.blocks import BlockwiseNet, ResidualUnit, block_shapes, split_model
from distillkit.models.pooling import fast_pools

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FAMILIES = {
    "VGG-16": ("configs/compress_fashion_mnist_vgg16.yaml", 3.0, {"plain": "internal"}, (0.25, 0.5, 1.0)),
    "ResNet-18": ("configs/compress_fashion_mnist_resnet18.yaml", 2.5, {}, (0.25, 0.5, 1.0)),
    "ResNet-20": ("configs/compress_fashion_mnist_resnet20.yaml", 2.5, {}, (1.0,)),
    "user CNN": ("user_cnn", 2.5, {"plain": "internal"}, (1.0,)),
}
"""Each family's config (`user_cnn`: the config `compress_families.user_cnn_config` builds), the MACs reduction the
families benchmark asks of it, the student options it sets (`compress_families.py`: VGG-16's and the user CNN's
blocks keep their last conv wide, `student.plain: internal`) and the widths timed (the first the benchmark's)."""
OPS = (
    "aten::conv2d",
    "aten::max_pool2d",
    "aten::maximum",
    "aten::batch_norm",
    "aten::add_",
    "aten::add",
    "aten::relu_",
)
"""`aten::maximum`: the strided maxima of `StridedMaxPool2d` (the students' pooling in NCHW)."""


def family_config(config: str) -> CompressConfig:
    """The config file `config`, or for `user_cnn` the user CNN's config (the backbone registered)."""
    if config == "user_cnn":
        from compress_families import user_cnn_config

        return CompressConfig.model_validate(user_cnn_config())
    return load_config(ROOT / config, CompressConfig)


def pair(
    config: str, width: float, reduction: float, student: dict | None = None
) -> tuple[BlockwiseNet, BlockwiseNet, tuple[int, ...]]:
    """Teacher and student (untrained, eval mode) of `config` at `width`, the student meeting `reduction` with the
    `student:` options `student` sets."""
    cfg = family_config(config)
    t, s = cfg.teacher, cfg.student.model_copy(update={"macs_reduction": reduction, **(student or {})})
    shape = (1, cfg.data.image_size, cfg.data.image_size)
    teacher = split_model(build_model(t.arch, 10, 1, width, t.small_input).eval(), cfg.blocks).eval()
    shapes = block_shapes(teacher, torch.zeros(2, *shape))
    ratio, _ = ratio_from_config(teacher, shapes, s)
    blocks = student_from_config(teacher.blocks, shapes, s, ratio, "random")
    student = BlockwiseNet(blocks, copy.deepcopy(teacher.head), teacher.names).eval()
    return teacher, student, shape


def op_ms(net: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """CPU ms per forward of each operator in `OPS`, and the profiled pass's wall time (`total`), from one profiled
    pass after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        net(x)
        net(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            net(x)
            wall = (time.perf_counter() - start) * 1000
    totals = {e.key: e.cpu_time_total / 1000 for e in prof.key_averages()}
    return {op: totals.get(op, 0.0) for op in OPS} | {"total": wall}


def conv_bound(ms: dict[str, float], ops: dict[str, dict[str, float]], macs_ratio: float) -> float:
    """The speed-up a student would reach if its convs ran exactly `macs_ratio` faster than the teacher's and the
    rest of it took what it takes now (each model's conv share of its time from its profiled pass)."""
    share = {name: ops[name]["aten::conv2d"] / ops[name]["total"] for name in ("teacher", "student")}
    teacher_conv = ms["teacher"] * share["teacher"]
    student_rest = ms["student"] * (1 - share["student"])
    return ms["teacher"] / (teacher_conv / macs_ratio + student_rest)


def onnxruntime_ms(nets: dict[str, torch.nn.Module], shape: tuple[int, ...], rounds: int) -> dict[str, float]:
    """Median batch-64 ms of each net exported to ONNX and run by onnxruntime on one thread, interleaved."""
    import numpy as np
    import onnxruntime as ort

    from distillkit.compress.export import export_onnx

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    sessions = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, net in nets.items():
            path = export_onnx(net, (1, *shape), Path(folder) / f"{name}.onnx")["path"]
            sessions[name] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    x = {"input": np.random.default_rng(0).standard_normal((64, *shape), dtype=np.float32)}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            session.run(None, x)
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                session.run(None, x)
                runs.append((time.perf_counter() - start) * 1000)
            times[name].append(statistics.median(runs))
    return {name: statistics.median(v) for name, v in times.items()}


def blocked_ratio(teacher: torch.nn.Module, shape: tuple[int, ...], block: int = 16) -> float | None:
    """The most MACs a residual-internal student saves (teacher MACs / student MACs) when every thinned width is a
    multiple of `block`, at least `block`: each basic unit's internal width (its first 3×3 conv's output, its
    second's input) at `block` where it is wider, every other conv as the teacher's. On a CPU that computes output
    channels in blocks of `block`, a thinner width runs no faster. None for a teacher without basic units."""
    convs = {m: 0 for m in teacher.modules() if isinstance(m, torch.nn.Conv2d)}

    def count(conv: torch.nn.Module, _: tuple, out: torch.Tensor) -> None:
        convs[conv] = (
            conv.in_channels // conv.groups * conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        )
        convs[conv] *= out.shape[-2] * out.shape[-1]

    hooks = [conv.register_forward_hook(count) for conv in convs]
    with torch.no_grad():
        teacher(torch.zeros(1, *shape))
    for hook in hooks:
        hook.remove()
    units = [m for m in teacher.modules() if isinstance(m, (BasicBlock, ResidualUnit))]
    saved = 0.0
    for unit in units:
        first, second = [
            m for m in unit.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
        ][:2]
        saved += (convs[first] + convs[second]) * max(0.0, 1 - block / first.out_channels)
    total = sum(convs.values())
    return total / (total - saved) if units else None


SWEEP_INPUTS = ((16, 32), (32, 16), (64, 8))
"""Input channels and map size of the convs of ResNet-18's first three stages at width 0.25."""
SWEEP_OUTPUTS = (4, 6, 8, 12, 16, 24, 32, 48, 64)


def output_sweep(rounds: int) -> dict[tuple[int, int], dict[int, float]]:
    """Median batch-64 ms (NCHW, one thread) of a 3×3 conv from each of `SWEEP_INPUTS` to each of
    `SWEEP_OUTPUTS` channels, the output widths interleaved: how a conv's time follows its output channels."""
    found: dict[tuple[int, int], dict[int, list[float]]] = {}
    for c, hw in SWEEP_INPUTS:
        x = torch.randn(64, c, hw, hw)
        convs = {out: torch.nn.Conv2d(c, out, 3, padding=1, bias=False).eval() for out in SWEEP_OUTPUTS}
        times: dict[int, list[float]] = {out: [] for out in SWEEP_OUTPUTS}
        with torch.inference_mode():
            for _ in range(rounds):
                for out, conv in convs.items():
                    conv(x)
                    runs = []
                    for _ in range(3):
                        start = time.perf_counter()
                        conv(x)
                        runs.append((time.perf_counter() - start) * 1000)
                    times[out].append(statistics.median(runs))
        found[(c, hw)] = times
    return {key: {out: statistics.median(v) for out, v in t.items()} for key, t in found.items()}


def blocked_markdown(rows: dict[str, list[dict]]) -> str:
    lines = [
        "", "The most conv MACs a residual student can save when each unit's internal width is a multiple of 16 "
        "(`blocked_ratio`: at 16 where the teacher's is wider), against the MACs ratio of the student timed above:",
        "", "| Family | Width | MACs ratio of the student | best MACs ratio, widths in blocks of 16 |",
        "|---|---|---|---|",
    ]  # fmt: skip
    for family, entries in rows.items():
        for r in (r for r in entries if r["blocked_ratio"] is not None):
            lines.append(f"| {family} | {r['width']:g} | {r['macs_ratio']:.2f} | {r['blocked_ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def variants_markdown(rows: dict[str, list[dict]]) -> str:
    names = list(next(iter(rows.values()))[0]["variants"])
    lines = ["", "Other students for the same MACs target, and the families' pair frozen by TorchScript, like for like "
             "(teacher with its pools fast; NCHW, one thread, batch 64; speed-up / MACs ratio, the MACs ratio in "
             "brackets):", "", "| Family | Width | as benchmarked | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]  # fmt: skip
    for family, entries in rows.items():
        for r in entries:
            cells = [f"{r['share_like_for_like']:.2f} ({r['macs_ratio']:.2f}×)"]
            cells += [
                f"{v['speedup'] / v['macs_ratio']:.2f} ({v['macs_ratio']:.2f}×)"
                for v in r["variants"].values()
            ]
            lines.append(f"| {family} | {r['width']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_markdown(sweep: dict[tuple[int, int], dict[int, float]]) -> str:
    lines = [
        "", "A 3×3 conv's time by its output channels (NCHW, one thread, batch 64, ms, median over the rounds, "
        "output widths interleaved), from the input shapes of ResNet-18's first three stages at width 0.25:", "",
        "| input C×H×W | " + " | ".join(f"→ {out}" for out in SWEEP_OUTPUTS) + " |",
        "|---|" + "---|" * len(SWEEP_OUTPUTS),
    ]  # fmt: skip
    for (c, hw), times in sweep.items():
        lines.append(f"| {c}×{hw}×{hw} | " + " | ".join(f"{times[out]:.2f}" for out in SWEEP_OUTPUTS) + " |")
    return "\n".join(lines) + "\n"


def conv_ms(net: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """CPU ms per forward spent in convs, by the conv's input (channels × height × width), output channels and
    kernel, summed over the convs of that shape, from one profiled pass after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        net(x)
        net(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            net(x)
    found: dict[str, float] = {}
    for e in prof.key_averages(group_by_input_shape=True):
        if e.key == "aten::conv2d":
            (_, c, h, w), (out, _, kh, kw) = e.input_shapes[0], e.input_shapes[1]
            key = f"{c}×{h}×{w} → {out}, {kh}×{kw}"
            found[key] = found.get(key, 0.0) + e.cpu_time_total / 1000
    return found


def timed(nets: dict[str, torch.nn.Module], shape: tuple[int, ...], rounds: int, channels_last: bool) -> dict:
    """Median batch-64 ms of each net, interleaved, in NCHW or channels-last."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    nets = {name: copy.deepcopy(net).to(memory_format=fmt) for name, net in nets.items()}
    times: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(rounds):
        for name, net in nets.items():
            times[name].append(
                measure_latency(
                    net, (64, *shape), repeats=3, warmup=1, threads=1, channels_last=channels_last
                )["median_ms"]
            )
    return {name: statistics.median(v) for name, v in times.items()}


def frozen(net: torch.nn.Module, shape: tuple[int, ...]) -> torch.nn.Module:
    """`net` traced, frozen and optimised for inference by TorchScript (batch norm folded, oneDNN convs)."""
    with torch.no_grad():
        return torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(net.eval(), torch.zeros(2, *shape)))
        )


def wall_ms(nets: dict[str, torch.nn.Module], shape: tuple[int, ...], rounds: int) -> dict[str, float]:
    """Median batch-64 ms of each net (any callable, a frozen TorchScript module too), interleaved, one thread:
    rounds of 3 forward passes after one warm-up pass each."""
    x = torch.randn(64, *shape)
    times: dict[str, list[float]] = {name: [] for name in nets}
    with torch.inference_mode():
        for net in nets.values():
            net(x)
        for _ in range(rounds):
            for name, net in nets.items():
                start = time.perf_counter()
                for _ in range(3):
                    net(x)
                times[name].append((time.perf_counter() - start) / 3 * 1000)
    return {name: statistics.median(v) for name, v in times.items()}


VARIANTS = {"widths in 16s": {"channel_multiple": 16}, "depthwise": {"design": "depthwise"}}
"""Other students for the same MACs target: `student:` options added to the family's."""


def variants(
    config: str,
    width: float,
    reduction: float,
    student: dict,
    fast_teacher: torch.nn.Module,
    student_net: torch.nn.Module,
    shape: tuple[int, ...],
    rounds: int,
) -> dict[str, dict[str, float]]:
    """MACs ratio and like-for-like speed-up (against `fast_teacher`, the teacher with its pools fast) of each
    `VARIANTS` student and of `fast_teacher` and `student_net` (the family's student) frozen by TorchScript."""
    teacher_macs = count_macs(fast_teacher, (1, *shape))
    found = {}
    for name, extra in VARIANTS.items():
        _, net, _ = pair(config, width, reduction, student | extra)
        macs = teacher_macs / count_macs(net, (1, *shape))
        ms = timed({"teacher": fast_teacher, "student": net}, shape, rounds, False)
        found[name] = {"macs_ratio": macs, "speedup": ms["teacher"] / ms["student"]}
    macs = teacher_macs / count_macs(student_net, (1, *shape))
    ms = wall_ms(
        {"teacher": frozen(fast_teacher, shape), "student": frozen(student_net, shape)}, shape, rounds
    )
    found["TorchScript frozen"] = {"macs_ratio": macs, "speedup": ms["teacher"] / ms["student"]}
    return found


def measure(config: str, width: float, reduction: float, student: dict, rounds: int, shapes: bool) -> dict:
    teacher, student_net, shape = pair(config, width, reduction, student)
    nets = {"teacher": teacher, "student": student_net}
    macs = count_macs(teacher, (1, *shape)) / count_macs(student_net, (1, *shape))
    fast_teacher = copy.deepcopy(teacher)
    fast_pools(fast_teacher)
    like_for_like = nets | {"teacher, pools fast": fast_teacher}
    ms = timed(like_for_like, shape, rounds, False)
    ms_cl = timed(nets, shape, rounds, True)
    x = torch.randn(64, *shape)
    speedup, speedup_cl = ms["teacher"] / ms["student"], ms_cl["teacher"] / ms_cl["student"]
    ops = {name: op_ms(net, x) for name, net in like_for_like.items()}
    like = {"teacher": "teacher, pools fast", "student": "student"}  # the conv bound, like for like
    ort_ms = onnxruntime_ms(nets, shape, rounds)
    return {
        "width": width,
        "macs_ratio": macs,
        "ms": ms,
        "speedup": speedup,
        "share": speedup / macs,
        "share_like_for_like": ms["teacher, pools fast"] / ms["student"] / macs,
        "ms_channels_last": ms_cl,
        "speedup_channels_last": speedup_cl,
        "share_channels_last": speedup_cl / macs,
        "ops": ops,
        "share_bound": conv_bound(
            {k: ms[v] for k, v in like.items()}, {k: ops[v] for k, v in like.items()}, macs
        )
        / macs,
        "ms_onnxruntime": ort_ms,
        "share_onnxruntime": ort_ms["teacher"] / ort_ms["student"] / macs,
        "convs": {name: conv_ms(net, x) for name, net in nets.items()} if shapes else None,
        "blocked_ratio": blocked_ratio(teacher, shape),
        "variants": variants(config, width, reduction, student, fast_teacher, student_net, shape, rounds),
    }


def markdown(rows: dict[str, list[dict]], rounds: int) -> str:
    lines = [
        "# compress_width_latency", "", "`python benchmarks/compress_width_latency.py`", "",
        f"Untrained teacher and PBKD student at each width, batch 64, one CPU thread, median of {rounds} rounds "
        "(interleaved) of 3 forward passes, in NCHW and in channels-last; per-operator ms (NCHW) from one profiled "
        "pass. Conv bound: the speed-up / MACs ratio the student would reach if its convs ran exactly the MACs ratio "
        "faster than the teacher's (with its pools fast) and the rest of it took what it takes now (NCHW; the conv "
        "shares from the profiled pass). onnxruntime: both models exported to ONNX and run by onnxruntime's CPU "
        "provider, one thread, the same rounds. The students' max-pooling runs as `StridedMaxPool2d` (the same "
        "values, faster in NCHW); like for like: the teacher with its pools made fast too. Pooling ms: `max_pool2d` "
        "+ the strided maxima (`maximum`).", "",
        "| Family | Width | MACs ratio | Teacher ms | Student ms | Speed-up | Speed-up / MACs ratio | "
        "teacher ms, pools fast | like for like: speed-up / MACs ratio | "
        "channels-last ms (T / S) | channels-last speed-up / MACs ratio | "
        "conv bound: speed-up / MACs ratio | onnxruntime ms (T / S) | onnxruntime speed-up / MACs ratio | "
        "conv2d ms (T / S) | pooling ms (T / S) | batch_norm ms (T / S) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for family, entries in rows.items():
        for r in entries:
            t, s = r["ops"]["teacher"], r["ops"]["student"]
            cl, ort = r["ms_channels_last"], r["ms_onnxruntime"]
            cells = [family, f"{r['width']:g}", f"{r['macs_ratio']:.2f}", f"{r['ms']['teacher']:.1f}",
                     f"{r['ms']['student']:.1f}", f"{r['speedup']:.2f}", f"{r['share']:.2f}",
                     f"{r['ms']['teacher, pools fast']:.1f}", f"{r['share_like_for_like']:.2f}",
                     f"{cl['teacher']:.1f} / {cl['student']:.1f}", f"{r['share_channels_last']:.2f}",
                     f"{r['share_bound']:.2f}", f"{ort['teacher']:.1f} / {ort['student']:.1f}",
                     f"{r['share_onnxruntime']:.2f}"]  # fmt: skip
            pool = {n: v["aten::max_pool2d"] + v["aten::maximum"] for n, v in (("t", t), ("s", s))}
            cells += [f"{t['aten::conv2d']:.1f} / {s['aten::conv2d']:.1f}", f"{pool['t']:.1f} / {pool['s']:.1f}",
                      f"{t['aten::batch_norm']:.1f} / {s['aten::batch_norm']:.1f}"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    for family, entries in rows.items():
        for r in (r for r in entries if r["convs"] is not None):
            lines += ["", f"{family} at width {r['width']:g}: conv time (NCHW, ms per batch-64 forward, summed over "
                      "the convs of each shape), by input C×H×W → output channels, kernel:", "",
                      "| model | conv shape | ms |", "|---|---|---|"]  # fmt: skip
            for name in ("teacher", "student"):
                for key, v in sorted(r["convs"][name].items(), key=lambda kv: -kv[1]):
                    lines.append(f"| {name} | {key} | {v:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--widths", nargs="+", type=float, help="widths to time (default: each family's)")
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "compress_width_latency.md")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rows = {}
    for family in args.families:
        config, reduction, student, widths = FAMILIES[family]
        rows[family] = [
            measure(config, w, reduction, student, args.rounds, shapes=i == 0)
            for i, w in enumerate(args.widths or widths)
        ]
        for r in rows[family]:
            print(f"{family} width {r['width']:g}: MACs {r['macs_ratio']:.2f}x, speed-up {r['speedup']:.2f}x "
                  f"({r['share']:.2f} of the MACs ratio; like for like {r['share_like_for_like']:.2f}; "
                  f"channels-last {r['share_channels_last']:.2f}; "
                  f"conv bound {r['share_bound']:.2f}; onnxruntime {r['share_onnxruntime']:.2f})",
                  flush=True)  # fmt: skip
    text = markdown(rows, args.rounds) + sweep_markdown(output_sweep(args.rounds)) + blocked_markdown(rows)
    text += variants_markdown(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
