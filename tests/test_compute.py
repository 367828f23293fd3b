import pytest

from distillkit.compress.compute import (
    BlockCosts,
    pbkd_stage_macs,
    pbkd_training_macs,
    supervised_training_macs,
)


def test_stage_cost_by_hand() -> None:
    costs = BlockCosts(teacher=[10, 20, 30], student=[4, 6, 8], head=1)
    # stage for block 1 after block 0 was replaced: before = S0 = 4; target = T1 = 20; trained = 2·S1 = 12;
    # after = 2·(T2 + head) = 62
    assert pbkd_stage_macs(costs, 1, {0}, local_loss=True) == 4 + 20 + 12 + 62
    assert pbkd_stage_macs(costs, 1, {0}, local_loss=False) == 4 + 12 + 62
    # the first stage has nothing before it
    assert pbkd_stage_macs(costs, 0, set(), local_loss=True) == 10 + 8 + 2 * (20 + 30 + 1)
    # a stage KD term adds a forward pass of the whole teacher (10 + 20 + 30 + 1)
    assert pbkd_stage_macs(costs, 1, {0}, local_loss=True, stage_kd=True) == 4 + 20 + 12 + 62 + 61


def test_total_cost() -> None:
    costs = BlockCosts(teacher=[10, 20], student=[4, 6], head=2)
    stage0 = 10 + 8 + 2 * (20 + 2)
    stage1 = 4 + 20 + 12 + 2 * 2
    finetune = 3 * (4 + 6 + 2) + (10 + 20 + 2)
    assert (
        pbkd_training_macs(costs, [0, 1], 5, True, finetune_samples=3) == 5 * (stage0 + stage1) + 3 * finetune
    )
    assert supervised_training_macs(costs.teacher_total, 7) == 3 * 32 * 7
    # top-down: stage for block 1 first (block 0 still the teacher's), then block 0 with nothing replaced before it
    assert pbkd_training_macs(costs, [1, 0], 1, False) == (10 + 12 + 4) + (8 + 2 * (6 + 2))
    with pytest.raises(IndexError):
        pbkd_stage_macs(costs, 2, set(), True)
