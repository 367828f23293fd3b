"""Distillation losses as pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def local_l2(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """PBKD's local loss ½‖s − t‖², averaged over elements (so its weight does not depend on feature size)."""
    return 0.5 * (student - teacher).pow(2).mean()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al. (2015): T² · KL(softmax(t/T) ‖ softmax(s/T)), mean over the batch."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    log_q = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p, log_q, log_target=True, reduction="batchmean") * temperature**2


def hint_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """FitNets (Romero et al., 2015) hint: mean squared error between feature maps of equal shape."""
    return F.mse_loss(student, teacher)


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Spatial attention of Zagoruyko & Komodakis (2017): L2-normalised mean of squared activations, N×(H·W)."""
    return F.normalize(features.pow(2).mean(1).flatten(1), dim=1)


def attention_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Attention transfer: mean squared difference of normalised attention maps (use weight β≈1000)."""
    return (attention_map(student) - attention_map(teacher)).pow(2).mean()
