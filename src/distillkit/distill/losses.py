"""Distillation losses as pure functions of tensors."""

from __future__ import annotations

from collections.abc import Callable

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


def less_forget_loss(features: torch.Tensor, old_features: torch.Tensor) -> torch.Tensor:
    """LUCIR's less-forget constraint (Hou et al., 2019): 1 − cos(f, f_old), mean over the batch."""
    return (1.0 - F.cosine_similarity(features, old_features, dim=1)).mean()


def margin_ranking_loss(
    scores: torch.Tensor,
    targets: torch.Tensor,
    num_old: int,
    margin: float,
    hard_negatives: int,
    pairs: Callable[[int], float] | None = None,
) -> torch.Tensor:
    """LUCIR's inter-class separation: for samples of old classes, the ground-truth score must exceed each of the
    `hard_negatives` highest new-class scores by `margin` (hinge, mean over the pairs; 0 without such samples).

    `pairs` maps this batch's pair count to the count to divide by (default: itself). Under DDP, pass
    `distributed.process_share`: each process then divides by its share of the global count, so the averaged
    gradient is that of the mean over the global batch, whose old samples are not spread evenly over processes.
    """
    old = targets < num_old
    new_classes = scores.shape[1] - num_old
    if num_old == 0 or new_classes == 0:
        return scores.new_zeros(())
    k = min(hard_negatives, new_classes)
    count = int(old.sum()) * k
    divisor = pairs(count) if pairs is not None else count  # a collective under DDP: every process calls it
    if count == 0:
        return scores.new_zeros(())
    gt = scores[old].gather(1, targets[old][:, None])  # (n, 1)
    hard = scores[old, num_old:].topk(k, dim=1).values  # (n, k)
    hinge = F.relu(margin - gt + hard)
    return hinge.mean() if divisor == count else hinge.sum() / divisor


def pod_spatial_loss(features: torch.Tensor, old_features: torch.Tensor) -> torch.Tensor:
    """PODNet's POD-spatial (Douillard et al., 2020) for one stage output (N, C, H, W): squared features pooled
    along width and along height, concatenated, L2-normalised; Frobenius distance, mean over the batch."""

    def pooled(x: torch.Tensor) -> torch.Tensor:
        x = x.pow(2)
        return F.normalize(torch.cat([x.sum(dim=3).flatten(1), x.sum(dim=2).flatten(1)], dim=1), dim=1)

    return (pooled(features) - pooled(old_features)).norm(dim=1).mean()


def pod_flat_loss(features: torch.Tensor, old_features: torch.Tensor) -> torch.Tensor:
    """PODNet's POD-flat: Euclidean distance between the final embeddings, mean over the batch."""
    return (features - old_features).norm(dim=1).mean()


def nca_loss(
    similarities: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor | float, margin: float
) -> torch.Tensor:
    """PODNet's NCA loss with a margin: [−log(exp(η(s_y − δ)) / Σ_{i≠y} exp(η s_i))]₊, mean over the batch, for
    class similarities s (N, K), scale η and margin δ."""
    s = scale * similarities
    target = s.gather(1, targets[:, None]).squeeze(1) - scale * margin
    others = s.scatter(1, targets[:, None], float("-inf")).logsumexp(dim=1)
    return F.relu(others - target).mean()
