"""Classification metrics from logits: top-k accuracy and the confusion matrix."""

from __future__ import annotations

import torch


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    """Percentage of samples whose target is among the `k` highest logits (k clipped to the class count)."""
    if len(targets) == 0:
        return 0.0
    k = min(k, logits.shape[1])
    hits = (logits.topk(k, dim=1).indices == targets[:, None]).any(1)
    return 100.0 * hits.float().mean().item()


def confusion_matrix(logits: torch.Tensor, targets: torch.Tensor, num_classes: int) -> list[list[int]]:
    """Counts[i][j] of samples of true class i predicted as class j."""
    pred = logits.argmax(1)
    flat = torch.bincount(targets * num_classes + pred, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes).tolist()
