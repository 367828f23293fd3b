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


class LocalSimilarityHead(CosineHead):
    """PODNet's local similarity classifier (Douillard et al., 2020): `proxies` weight vectors per class; the
    class similarity is the softmax-weighted mean of the cosines to its proxies, logits = η · similarity.

    `weight` holds the proxies class by class: rows ``c * proxies .. (c + 1) * proxies - 1`` are class c's.
    η starts at 16, as the cosine head's σ (PODNet starts it at 1 and learns it with SGD at lr 0.1)."""

    def __init__(self, in_features: int, out_features: int, proxies: int = 10, scale: float = 16.0) -> None:
        super().__init__(in_features, out_features * proxies, scale)
        self.proxies = proxies

    @property
    def out_features(self) -> int:
        return self.weight.shape[0] // self.proxies

    def cosine(self, features: Tensor) -> Tensor:
        """Class similarities (N, K) before scaling: Σ_k softmax_k(s_ck) · s_ck over each class's proxies."""
        s = super().cosine(features).unflatten(1, (self.out_features, self.proxies))
        return (s.softmax(dim=2) * s).sum(dim=2)


def make_head(kind: str, in_features: int, out_features: int, proxies: int = 10) -> nn.Module:
    """A fresh `linear`, `cosine` or `lsc` (local similarity, `proxies` per class) head."""
    if kind == "linear":
        return nn.Linear(in_features, out_features)
    if kind == "cosine":
        return CosineHead(in_features, out_features)
    if kind == "lsc":
        return LocalSimilarityHead(in_features, out_features, proxies)
    raise ValueError(f"unknown head kind {kind!r}")


def head_kind(head: nn.Module) -> str:
    """`linear`, `cosine` or `lsc`: what `make_head` would build for `head`."""
    if isinstance(head, LocalSimilarityHead):
        return "lsc"
    return "cosine" if isinstance(head, CosineHead) else "linear"


def rows_per_class(head: nn.Module) -> int:
    """Rows of `head.weight` that belong to one class (a local-similarity head's proxies; 1 otherwise)."""
    return head.proxies if isinstance(head, LocalSimilarityHead) else 1


@torch.no_grad()
def grow_head(head: nn.Module, out_features: int) -> nn.Module:
    """A head with `out_features` outputs whose first outputs are a copy of `head`'s (new rows freshly drawn)."""
    kind, rows = head_kind(head), rows_per_class(head)
    old = head.out_features
    if out_features < old:
        raise ValueError(f"cannot shrink a head from {old} to {out_features} outputs")
    new = make_head(kind, head.weight.shape[1], out_features, rows).to(head.weight.device)
    new.weight[: old * rows] = head.weight
    if kind == "linear":
        new.bias[:old] = head.bias
    else:
        new.sigma.copy_(head.sigma)
    return new


@torch.no_grad()
def imprint(head: nn.Module, features: Tensor, labels: Tensor, classes: range) -> None:
    """Weight imprinting (Qi et al., 2018; as LUCIR and PODNet use it): set the weights of `classes` to the
    normalised mean of their samples' normalised features, scaled to the mean norm of the other classes' weights.

    With several proxies per class (`lsc`), proxy k is imprinted from the k-th of `proxies` interleaved shares of
    the class's samples (the whole class when it has fewer samples than proxies), so the proxies start apart."""
    weight, rows = head.weight, rows_per_class(head)
    owned = {r for c in classes for r in range(c * rows, (c + 1) * rows)}
    others = [r for r in range(weight.shape[0]) if r not in owned]
    scale = weight[others].norm(dim=1).mean() if others else weight.norm(dim=1).mean()
    for c in classes:
        members = F.normalize(features[labels == c], dim=1)
        for k in range(rows):
            share = members[k::rows] if len(members) >= rows else members
            weight[c * rows + k] = F.normalize(share.mean(0), dim=0) * scale
