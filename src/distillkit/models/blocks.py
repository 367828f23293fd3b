"""Cutting a network into sub-network blocks, and the `BlockwiseNet` that chains them.

A model is traced with torch.fx and cut after the last operation of each boundary module. Every cut must be
crossed by exactly one tensor (a residual connection crossing a cut is an error), so that the blocks chained
in order compute exactly what the model computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import fx, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from distillkit.engine.modes import eval_mode
from distillkit.errors import SplitError


class ResidualUnit(nn.Module):
    """`relu(branch(x) + shortcut(x))`: the student form of a torchvision BasicBlock or Bottleneck."""

    def __init__(self, branch: nn.Sequential, shortcut: nn.Module) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class BlockTracer(fx.Tracer):
    """fx tracer that keeps residual units whole (they are redesigned as units, not op by op) and max-pooling
    layers leaves (a student's `StridedMaxPool2d` included)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        whole = isinstance(m, (BasicBlock, Bottleneck, ResidualUnit, nn.MaxPool2d))
        return whole or super().is_leaf_module(m, module_qualified_name)


class BlockwiseNet(nn.Module):
    """`head(block_N(… block_1(x)))`; blocks can be swapped one at a time."""

    def __init__(self, blocks: Sequence[nn.Module], head: nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.names = list(names)

    def run_blocks(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Output of blocks[start:stop] applied to `x`."""
        for block in self.blocks[start:stop]:
            x = block(x)
        return x

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output of every block, in order."""
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.run_blocks(x))


def block_shapes(net: BlockwiseNet, example: torch.Tensor) -> list[tuple[torch.Size, torch.Size]]:
    """(input shape, output shape) of every block of `net` for the batch `example` (in eval mode: nothing moves)."""
    shapes = []
    with eval_mode(net), torch.no_grad():
        x = example
        for block in net.blocks:
            y = block(x)
            shapes.append((x.shape, y.shape))
            x = y
    return shapes


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolic trace with `BlockTracer`, with a clear error when the model is not traceable."""
    try:
        graph = BlockTracer().trace(model)
    except Exception as exc:
        raise SplitError(
            f"{type(model).__name__} cannot be traced by torch.fx ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); give the blocks as modules yourself"
        ) from None
    return fx.GraphModule(model, graph)


def auto_boundaries(model: nn.Module) -> list[str]:
    """Default cuts: a ResNet (a `conv1` stem, then its stages: the `stages` attribute, or layer1..layer4) → the
    stem (ending at `maxpool`, or at `relu` without one, as a CIFAR ResNet) + each stage; otherwise after every
    max-pool."""
    stages = list(getattr(model, "stages", ("layer1", "layer2", "layer3", "layer4")))
    if hasattr(model, "conv1") and all(hasattr(model, n) for n in stages):
        stem = "maxpool" if hasattr(model, "maxpool") else "relu" if hasattr(model, "relu") else None
        if stem is not None:
            return [stem, *stages]
    gm = trace(model)
    pools = [
        str(n.target)
        for n in gm.graph.nodes
        if n.op == "call_module" and isinstance(gm.get_submodule(str(n.target)), nn.MaxPool2d)
    ]
    if not pools:
        raise SplitError(f"{type(model).__name__} has no max-pool to cut at; give 'blocks' as module names")
    return pools


def split_model(model: nn.Module, boundaries: Sequence[str] | str = "auto") -> BlockwiseNet:
    """Cut `model` after each module named in `boundaries` (in order); what follows the last is the head.

    A name may be a container (e.g. "layer2"): the cut goes after its last operation. The blocks share
    parameters with `model`.
    """
    names = auto_boundaries(model) if boundaries == "auto" else list(boundaries)
    if not names:
        raise SplitError("at least one block boundary is needed")
    gm = trace(model)
    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise SplitError(f"{type(model).__name__}.forward must take exactly one tensor input")
    cut_at = [_last_node_of(nodes, name, gm) for name in names]
    for prev, cur, name in zip(cut_at, cut_at[1:], names[1:], strict=False):
        if nodes.index(cur) <= nodes.index(prev):
            raise SplitError(
                f"block boundary '{name}' comes before the one listed ahead of it; list them in order"
            )
    output = next(n for n in nodes if n.op == "output")
    segments, start = [], placeholders[0]
    for end, name in zip(cut_at, names, strict=True):
        segments.append(_segment(gm, nodes, start, end, name))
        start = end
    head = _segment(gm, nodes, start, output.args[0], "head")
    net = BlockwiseNet(segments, head, names)
    own = {id(m) for m in model.modules()}
    for wrapper in net.modules():  # the new wrappers take the model's mode; its own modules keep theirs
        if id(wrapper) not in own:
            wrapper.training = model.training
    return net


def _last_node_of(nodes: list[fx.Node], name: str, gm: fx.GraphModule) -> fx.Node:
    found = [
        n
        for n in nodes
        if n.op == "call_module" and (n.target == name or str(n.target).startswith(name + "."))
    ]
    if not found:
        available = sorted({str(n.target).split(".")[0] for n in nodes if n.op == "call_module"})
        raise SplitError(
            f"no module named '{name}' runs in the model; top-level modules: {', '.join(available)}"
        )
    return found[-1]


def _segment(
    gm: fx.GraphModule, nodes: list[fx.Node], start: fx.Node, end: fx.Node, name: str
) -> fx.GraphModule:
    """GraphModule computing `end` from `start` alone (nodes strictly after `start`, up to `end`)."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {start: graph.placeholder("x")}

    def lookup(n: fx.Node) -> fx.Node:
        if n in env:
            return env[n]
        if n.op == "get_attr":  # constants may be read anywhere
            env[n] = graph.node_copy(n, lookup)
            return env[n]
        raise SplitError(
            f"cannot cut the model before '{name}': the value '{n.name}' is used across the cut "
            f"(a skip connection crosses it); choose boundaries between residual units"
        )

    inside = False
    for n in nodes:
        if n is start:
            inside = True
            continue
        if not inside or n.op in ("output", "placeholder"):
            continue
        env[n] = graph.node_copy(n, lookup)
        if n is end:
            break
    graph.output(lookup(end))
    return fx.GraphModule(gm, graph, class_name=f"Block_{name.replace('.', '_')}")
