"""The retrieval policy's phases read every number from RetrievalConfig, in order, and share the
carry heights with the envs' scripted expert."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ami_robot.envs import experts
from ami_robot.policies.retrieval import Carry, Retrieval, RetrievalConfig, carry_phases, goal_phases

CARRY = Carry(aim=np.array([0.5, 0.0]), there=np.array([0.5, 0.15]), grasp_height=0.02, goal_z=0.12)


def names(phases) -> list[str]:
    return [w.name for w, _ in phases]


def test_the_carry_heights_are_the_experts() -> None:
    cfg = RetrievalConfig()
    assert (cfg.clearance, cfg.carry_lift) == (experts.CLEARANCE, experts.CARRY_LIFT)
    over, *_, lift, carry, _, _, up = (w for w, _ in carry_phases(cfg, CARRY))
    assert over.xyz[2] == pytest.approx(0.02 + experts.CLEARANCE)
    assert lift.xyz[2] == carry.xyz[2] == pytest.approx(0.02 + experts.CARRY_LIFT)
    assert np.isnan(up.xyz[:2]).all() and up.xyz[2] == 0.12


def test_a_retry_starts_the_pick_again_from_the_top() -> None:
    cfg = RetrievalConfig()
    first = carry_phases(cfg, CARRY)
    again = carry_phases(cfg, dataclasses.replace(CARRY, retry_from=np.array([0.51, 0.01])))
    assert names(again) == ["open and up"] + names(first)
    np.testing.assert_allclose(again[0][0].xyz, [0.51, 0.01, 0.02 + cfg.clearance])
    assert [w.holds_object for w, _ in first] == [False, False, False, True, True, True, False, False]
    assert [w.reads_object for w, _ in first] == [True] + [False] * 7


def test_every_budget_and_tolerance_comes_from_the_config() -> None:
    cfg = RetrievalConfig(approach_steps=5, approach_tolerance=0.02, lift_steps=3, carry_steps=7,
                          descend_steps=4, gripper_steps=1, reread=False, last_steps=99)
    over, down, close, lift, carry, put_down, release, up = (w for w, _ in carry_phases(cfg, CARRY))
    assert (over.max_steps, over.tolerance, over.min_steps) == (5, 0.02, 0)
    assert (lift.max_steps, carry.max_steps, down.max_steps, put_down.max_steps) == (3, 7, 4, 4)
    assert close.max_steps == release.max_steps == 1 and up.max_steps == 99
    holding = Retrieval(np.arange(1), np.zeros(1), np.array([0.5, 0.0, 0.1]), 1, 0,
                        np.array([0.5, 0.0, 0.03]), None)
    phases = goal_phases(RetrievalConfig(align_steps=6, descend_tolerance=0.004), [holding], False, 0.02)
    assert names(phases) == ["line up", "go down", "close", "goal image 0"]
    assert phases[0][0].max_steps == 6 and phases[1][0].tolerance == 0.004 and phases[1][0].xyz[2] == 0.03
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.retries = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="budgets"):
        RetrievalConfig(lift_steps=0)
