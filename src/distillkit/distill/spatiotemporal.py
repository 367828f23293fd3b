"""Spatio-temporal knowledge of video features and its distillation (CIVC, docs/design.md), as pure functions.

A stage output F of a clip is (N, T, C, H, W). Its *spatial* knowledge is the mean over time S (N, C, H, W); its
*temporal* knowledge is the residual F − S, pooled over space into a (N, T, ·) descriptor. Both can be taken at
fixed positions or *along trajectories*: `track` follows each position p of frame 0 from frame to frame by the
argmax of local correlation, and `align` gathers the features along those trajectories, so that a moving
object's features stay in one place of the aligned tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distillkit.distill.losses import pod_spatial_loss


def displacement_grid(radius: int) -> torch.Tensor:
    """The (2r+1)² displacements (dy, dx) searched by `track`, row-major from (−r, −r) to (r, r), as (D, 2)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    r = torch.arange(-radius, radius + 1)
    return torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1).reshape(-1, 2)


def local_correlation(a: torch.Tensor, b: torch.Tensor, radius: int) -> torch.Tensor:
    """Correlation (N, H, W, D) of `a` at p with `b` at p + d for each displacement d of `displacement_grid`.

    `a` and `b` are (N, C, H, W); positions outside `b` count as zero features. One product per displacement
    over the whole batch (four times faster here than an unfold of the neighbourhoods)."""
    h, w = a.shape[-2:]
    padded = F.pad(b, (radius, radius, radius, radius))
    return torch.stack(
        [
            (a * padded[:, :, radius + dy : radius + dy + h, radius + dx : radius + dx + w]).sum(1)
            for dy, dx in displacement_grid(radius).tolist()
        ],
        dim=-1,
    )


def _unit(x: torch.Tensor, dim: int) -> torch.Tensor:
    """`x` scaled to unit L2 norm along `dim` (zero vectors stay zero)."""
    return x * x.square().sum(dim, keepdim=True).clamp_min(1e-24).rsqrt()


@torch.no_grad()
def track(features: torch.Tensor, radius: int) -> torch.Tensor:
    """Trajectories through a clip's feature maps (N, T, C, H, W): index (N, T, H·W) of the position at time t of
    the trajectory that starts at position p of frame 0 (row-major, ``y * W + x``).

    Each step from t to t+1 moves to the displacement within `radius` of highest correlation between the
    L2-normalised features (no move when none beats staying put), clamped to the map. Computed without
    gradients, for the whole batch at once; only the T − 1 steps are a Python loop.
    """
    if features.dim() != 5:
        raise ValueError(f"track: expected features (N, T, C, H, W), got shape {tuple(features.shape)}")
    n, t, c, h, w = features.shape
    f = _unit(features.float(), dim=2)
    grid = displacement_grid(radius).to(features.device)
    start = torch.arange(h * w, device=features.device).expand(n, h * w)
    if t == 1 or radius == 0:
        return start.unsqueeze(1).expand(n, t, h * w).contiguous()
    corr = local_correlation(f[:, :-1].flatten(0, 1), f[:, 1:].flatten(0, 1), radius)  # (N(T-1), H, W, D)
    value, best = corr.max(dim=-1)
    centre = len(grid) // 2
    stay = value <= corr[..., centre]
    best = torch.where(stay, torch.full_like(best, centre), best).view(n, t - 1, h * w)
    positions = [start]
    for step in range(t - 1):
        pos = positions[-1]
        move = grid[best[:, step].gather(1, pos)]  # (N, HW, 2)
        y = (pos // w + move[..., 0]).clamp(0, h - 1)
        x = (pos % w + move[..., 1]).clamp(0, w - 1)
        positions.append(y * w + x)
    return torch.stack(positions, dim=1)


def frame_descriptors(clips: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Input frames (N, T, 3, H, W) as features for `track` at a stage's resolution `size` (the optical-flow
    option): frames average-pooled to `size`, each position described by its 3×3 neighbourhood with the mean
    removed, so that correlation compares local patterns rather than colours (block matching)."""
    n, t = clips.shape[:2]
    x = F.adaptive_avg_pool2d(clips.flatten(0, 1).float(), size)
    patches = F.unfold(x, kernel_size=3, padding=1)  # (NT, 27, h*w)
    patches = patches - patches.mean(1, keepdim=True)
    return patches.view(n, t, -1, *size)


def align(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Features (N, T, C, H, W) gathered along trajectories `index` (N, T, H·W): out[:, t, :, p] is the feature
    at time t of the trajectory starting at p. Differentiable with respect to `features`."""
    n, t, c, h, w = features.shape
    gathered = features.flatten(3).gather(3, index.unsqueeze(2).expand(n, t, c, h * w))
    return gathered.view(n, t, c, h, w)


def decompose(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial knowledge S = mean over time (N, C, H, W) and the temporal residual F − S (N, T, C, H, W)."""
    spatial = features.mean(dim=1)
    return spatial, features - spatial.unsqueeze(1)


def temporal_descriptor(residual: torch.Tensor) -> torch.Tensor:
    """The residual (N, T, C, H, W) pooled over space, along height and along width separately (as POD pools,
    keeping the sign so that directions of motion differ), L2-normalised per frame: (N, T, C·(H + W))."""
    pooled = torch.cat([residual.mean(dim=3).flatten(2), residual.mean(dim=4).flatten(2)], dim=2)
    return F.normalize(pooled, dim=2)


def temporal_loss(
    residual: torch.Tensor, old_residual: torch.Tensor, mode: str = "descriptor"
) -> torch.Tensor:
    """Distance between the temporal knowledge of new and old features, mean over the batch.

    `descriptor`: Euclidean distance of the normalised descriptors, mean over frames. `correlation`: Frobenius
    distance of their T×T correlation matrices, divided by T."""
    d, d_old = temporal_descriptor(residual), temporal_descriptor(old_residual)
    if mode == "descriptor":
        return (d - d_old).norm(dim=2).mean()
    if mode == "correlation":
        t = d.shape[1]
        gram, gram_old = d @ d.transpose(1, 2), d_old @ d_old.transpose(1, 2)
        return (gram - gram_old).flatten(1).norm(dim=1).mean() / t
    raise ValueError(f"temporal_loss: unknown mode {mode!r} (descriptor or correlation)")


def spatial_loss(spatial: torch.Tensor, old_spatial: torch.Tensor) -> torch.Tensor:
    """Spatial-pooling distance (POD-spatial) of the time-mean maps (N, C, H, W)."""
    return pod_spatial_loss(spatial, old_spatial)


def whole_feature_loss(features: torch.Tensor, old_features: torch.Tensor) -> torch.Tensor:
    """The undecomposed baseline: POD-spatial on every frame's map of (N, T, C, H, W), as PODNet distils."""
    return pod_spatial_loss(features.flatten(0, 1), old_features.flatten(0, 1))
