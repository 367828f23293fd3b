import math

import pytest
import torch

from distillkit.distill.losses import attention_loss, attention_map, hint_loss, kd_loss, local_l2


def test_kd_loss_by_hand() -> None:
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])  # teacher softmax at T=1: (0.75, 0.25)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_loss(s, t, 1.0).item() == pytest.approx(expected, rel=1e-6)
    assert kd_loss(t, t, 4.0).item() == pytest.approx(0.0, abs=1e-7)
    # T² scaling: with T=2 the teacher distribution is softmax(log3/2, 0)
    q = torch.softmax(t / 2, dim=1)[0]
    expected2 = 4 * sum(q[i] * math.log(q[i] / 0.5) for i in range(2))
    assert kd_loss(s, t, 2.0).item() == pytest.approx(float(expected2), rel=1e-6)


def test_local_l2_and_hint_by_hand() -> None:
    a, b = torch.zeros(1, 2, 1, 1), torch.tensor([1.0, 3.0]).reshape(1, 2, 1, 1)
    assert local_l2(a, b).item() == pytest.approx(0.5 * (1 + 9) / 2)
    assert hint_loss(a, b).item() == pytest.approx((1 + 9) / 2)


def test_attention_transfer() -> None:
    f = torch.zeros(1, 2, 2, 2)
    f[0, :, 0, 0] = 1.0  # all energy at one position
    am = attention_map(f)
    assert am.shape == (1, 4)
    assert am[0].tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0])
    g = torch.ones(1, 2, 2, 2)  # uniform attention: 0.5 everywhere after normalisation
    assert attention_loss(f, g).item() == pytest.approx(((1 - 0.5) ** 2 + 3 * 0.25) / 4)
    assert attention_loss(g, 3 * g).item() == pytest.approx(0.0, abs=1e-7)  # scale-invariant
