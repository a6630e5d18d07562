"""With one generator per problem, a problem's plan does not depend on its batch companions."""

import pytest
import torch

from ami_robot.planners import PLANNERS, make_config, plan


def _bowl(targets: torch.Tensor):
    """Problem e's cost: squared distance of the last step's xyz to targets[e] (rows problem-major;
    a call may hold any number S of candidates per problem, as iCEM's shrinking population does)."""

    def cost(actions: torch.Tensor) -> torch.Tensor:
        t = targets.repeat_interleave(actions.shape[0] // len(targets), dim=0)  # (E*S, 3)
        return ((actions[:, -1, :3] - t) ** 2).sum(-1)

    return cost


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_batched_plan_equals_plans_alone(name: str) -> None:
    cfg = make_config(name)
    targets = torch.tensor([[0.03, -0.02, 0.01], [-0.05, 0.04, 0.0], [0.0, 0.06, -0.03]])
    gens = [torch.Generator().manual_seed(100 + e) for e in range(3)]
    together = plan(_bowl(targets), cfg, num_problems=3, generator=gens)
    for e in range(3):
        gen = torch.Generator().manual_seed(100 + e)
        alone = plan(_bowl(targets[e : e + 1]), cfg, generator=gen)
        torch.testing.assert_close(together[e], alone, rtol=1e-5, atol=1e-6)


def test_generator_count_must_match_problems() -> None:
    cfg = make_config("cem", samples=16, iterations=1)
    with pytest.raises(ValueError, match="one per problem"):
        plan(_bowl(torch.zeros(2, 3)), cfg, num_problems=2, generator=[torch.Generator()])
