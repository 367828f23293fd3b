"""Classifier heads that grow with the classes of a class-incremental stream."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CosineHead(nn.Module):
    """LUCIR's cosine normalisation (Hou et al., 2019): logits = σ · cos(f, w_k), σ learnable."""

    def __init__(self, in_features: int, out_features: int, scale: float = 16.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.sigma = nn.Parameter(torch.tensor(float(scale)))

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def cosine(self, features: Tensor) -> Tensor:
        """Cosine similarities (N, K) before scaling."""
        return F.linear(F.normalize(features, dim=1), F.normalize(self.weight, dim=1))

    def forward(self, features: Tensor) -> Tensor:
        return self.sigma * self.cosine(features)


def make_head(kind: str, in_features: int, out_features: int) -> nn.Module:
    """A fresh `linear` or `cosine` head."""
    if kind == "linear":
        return nn.Linear(in_features, out_features)
    if kind == "cosine":
        return CosineHead(in_features, out_features)
    raise ValueError(f"unknown head kind {kind!r}")


@torch.no_grad()
def grow_head(head: nn.Module, out_features: int) -> nn.Module:
    """A head with `out_features` outputs whose first outputs are a copy of `head`'s (new rows freshly drawn)."""
    kind = "cosine" if isinstance(head, CosineHead) else "linear"
    old = head.weight.shape[0]
    if out_features < old:
        raise ValueError(f"cannot shrink a head from {old} to {out_features} outputs")
    new = make_head(kind, head.weight.shape[1], out_features).to(head.weight.device)
    new.weight[:old] = head.weight
    if kind == "linear":
        new.bias[:old] = head.bias
    else:
        new.sigma.copy_(head.sigma)
    return new


@torch.no_grad()
def imprint(head: nn.Module, features: Tensor, labels: Tensor, classes: range) -> None:
    """Weight imprinting (Qi et al., 2018; as LUCIR and PODNet use it): set the weights of `classes` to the
    normalised mean of their samples' normalised features, scaled to the mean norm of the other classes' weights."""
    weight = head.weight
    others = [c for c in range(weight.shape[0]) if c not in classes]
    scale = weight[others].norm(dim=1).mean() if others else weight.norm(dim=1).mean()
    for c in classes:
        mean = F.normalize(features[labels == c], dim=1).mean(0)
        weight[c] = F.normalize(mean, dim=0) * scale
