"""Distillation losses as pure functions of tensors."""

from __future__ import annotations

import math
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


def less_forget_loss(
    features: torch.Tensor, old_features: torch.Tensor, where: torch.Tensor | None = None
) -> torch.Tensor:
    """LUCIR's less-forget constraint (Hou et al., 2019): 1 − cos(f, f_old), mean over the batch; with a mask
    `where` (N,), only the samples where it is true count (the others as 0, the mean still over the batch)."""
    distance = 1.0 - F.cosine_similarity(features, old_features, dim=1)
    return (distance if where is None else distance * where).mean()


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


def slice_energy(gradients: torch.Tensor) -> torch.Tensor:
    """Squared gradients of a loss w.r.t. features (N, T, C) or (N, T, C, H, W), summed over space and over the
    samples: the raw (T, C) energy of TCD's time-channel importance; sum the energies of several batches."""
    g = gradients.pow(2)
    return (g.flatten(3).sum(3) if g.dim() > 3 else g).sum(0)


def importance_weights(energy: torch.Tensor) -> torch.Tensor:
    """TCD's time-channel importance (Park et al., 2021): `energy` (T, C) divided by its mean, so that the weights
    average 1 (a slice with no gradient keeps weight 0; all zero stays zero). The code adds 1e-8 to the mean;
    we only keep it from being 0, since the energies of small gradients can be far below 1e-8."""
    return energy / energy.mean().clamp_min(torch.finfo(energy.dtype).tiny)


def tcd_feature_loss(
    features: torch.Tensor, old_features: torch.Tensor, importance: torch.Tensor | None = None
) -> torch.Tensor:
    """TCD's distillation of one stage output (N, T, C, H, W): the squared activations of each (time, channel)
    slice, L2-normalised over space; Euclidean distance to the old model's, weighted by the slice's importance
    (T, C) (None: 1), mean over the batch and the slices, divided by sqrt(T)."""
    new = F.normalize(features.pow(2).flatten(3), dim=3)
    old = F.normalize(old_features.pow(2).flatten(3), dim=3)
    distance = (new - old).norm(dim=3)  # (N, T, C)
    if importance is not None:
        distance = distance * importance
    return distance.mean() / math.sqrt(features.shape[1])


def tcd_embedding_loss(
    frames: torch.Tensor, old_frames: torch.Tensor, importance: torch.Tensor | None = None
) -> torch.Tensor:
    """TCD's distillation of the frame embeddings (N, T, C): squared differences of the L2-normalised frame
    features, each (t, c) weighted by its importance (T, C) (None: 1), summed over (T, C), mean over the batch,
    divided by T."""
    diff = (F.normalize(frames, dim=2) - F.normalize(old_frames, dim=2)).pow(2)
    if importance is not None:
        diff = diff * importance
    return diff.sum((1, 2)).mean() / frames.shape[1]


def temporal_diversity_loss(features: torch.Tensor) -> torch.Tensor:
    """TCD's temporal diversity loss of one stage output (N, T, C, H, W): for each sample and channel, the T×T
    cosine similarities of the channel's spatial maps at different times; Frobenius norm of the off-diagonal
    entries divided by T(T − 1), summed over the channels, mean over the batch. Zero when every channel's maps at
    different times are orthogonal (and for a single frame)."""
    n, t = features.shape[:2]
    if t < 2:
        return features.new_zeros(())
    maps = F.normalize(features.flatten(3).transpose(1, 2), dim=3)  # (N, C, T, H·W)
    similarity = maps @ maps.transpose(2, 3)  # (N, C, T, T)
    off = similarity * (1 - torch.eye(t, device=features.device, dtype=features.dtype))
    return (off.flatten(2).norm(dim=2) / (t * (t - 1))).sum(1).mean()
