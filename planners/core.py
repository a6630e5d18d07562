"""What every planner shares: the cost Protocol, the action box, warm starts, scoring, finishing.

A planner optimises action sequences `actions (B, H, A) -> cost (B,)` and knows nothing else.
Actions follow the DROID / V-JEPA 2-AC convention, A = 7: delta xyz (m), delta rotation as
extrinsic xyz Euler (rad), delta gripper. `E` independent problems are planned in one batch:
the cost function then sees `E * S` rows, problem-major (rows `e*S .. e*S+S-1` belong to
problem `e`), and the planner returns `(E, H, A)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

ACTION_DIM = 7
XYZ_DIMS = (0, 1, 2)
ROTATION_DIMS = (3, 4, 5)
GRIPPER_DIM = 6


# One generator for all problems, or one per problem: then each problem's noise is drawn from its
# own generator, so a problem's plan does not depend on which other problems share its batch.
Generators = torch.Generator | Sequence[torch.Generator] | None


def draw(kind: str, shape: tuple[int, ...], generator: Generators, device: torch.device | None,
         dtype: torch.dtype) -> torch.Tensor:
    """Standard normal ("randn") or uniform [0, 1) ("rand") noise of `shape` = (E, ...)."""
    fn = torch.randn if kind == "randn" else torch.rand
    if generator is None or isinstance(generator, torch.Generator):
        return fn(shape, generator=generator, device=device, dtype=dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for {shape[0]} problems; give one per problem")
    return torch.stack([fn(shape[1:], generator=g, device=device, dtype=dtype) for g in generator])


def generator_device(generator: Generators) -> torch.device | None:
    if generator is None:
        return None
    return generator.device if isinstance(generator, torch.Generator) else generator[0].device


class CostFn(Protocol):
    """Cost of each candidate action sequence; lower is better."""

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        """actions (B, H, A) -> cost (B,)."""
        ...


@dataclass(frozen=True)
class ActionSpace:
    """Which action dims are searched, inside which box, from which initial spread.

    Defaults are the V-JEPA 2-AC planner's: xyz and gripper sampled, rotation pinned to 0,
    xyz clipped per coordinate to +-maxnorm, gripper to +-0.75, initial std maxnorm (xyz)
    and 1 (gripper), and a returned gripper value with |g| < 0.25 rounded to 0.
    """

    sampled_dims: tuple[int, ...] = (0, 1, 2, 6)  # the other dims are pinned to 0
    maxnorm: float = 0.075  # xyz clip per coordinate (m per step)
    max_rotation: float = 0.1  # rotation clip per coordinate (rad), used only if sampled
    gripper_max: float = 0.75  # gripper clip (delta of closedness in [0, 1])
    xyz_std: float | None = None  # initial std of xyz (m); None: maxnorm, as in the paper
    gripper_std: float = 1.0  # initial std of the gripper
    gripper_round: float = 0.25  # returned |gripper| below this becomes 0; 0 disables
    # True: a returned gripper move that survives the rounding becomes a whole one, +-gripper_max.
    # The energy sees where the fingers are, not how hard they squeeze: a close that stops where
    # the fingers just meet the object looks like the grasp and holds nothing.
    gripper_snap: bool = False

    def __post_init__(self) -> None:
        dims = self.sampled_dims
        if not dims or len(set(dims)) != len(dims) or not all(0 <= d < ACTION_DIM for d in dims):
            raise ValueError(f"sampled_dims must be distinct dims in [0, {ACTION_DIM}), got {dims}")
        for name in ("maxnorm", "max_rotation", "gripper_max", "gripper_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.xyz_std is not None and not self.xyz_std > 0:
            raise ValueError(f"xyz_std must be > 0 or None, got {self.xyz_std}")
        if self.gripper_round < 0:
            raise ValueError(f"gripper_round must be >= 0, got {self.gripper_round}")

    def half_width(self, device: torch.device | None = None) -> torch.Tensor:
        """Box half-width per dim (A,); 0 on pinned dims, so clamping pins them."""
        width = torch.zeros(ACTION_DIM, device=device)
        width[list(XYZ_DIMS)] = self.maxnorm
        width[list(ROTATION_DIMS)] = self.max_rotation
        width[GRIPPER_DIM] = self.gripper_max
        mask = torch.zeros(ACTION_DIM, dtype=torch.bool, device=device)
        mask[list(self.sampled_dims)] = True
        return width * mask  # (A,)

    def init_std(self, device: torch.device | None = None) -> torch.Tensor:
        """Initial sampling std per dim (A,): the box half-width (or xyz_std), gripper_std, 0 pinned."""
        std = self.half_width(device).clone()
        if self.xyz_std is not None:
            std[list(XYZ_DIMS)] = torch.where(std[list(XYZ_DIMS)] > 0, self.xyz_std, 0.0)
        if GRIPPER_DIM in self.sampled_dims:
            std[GRIPPER_DIM] = self.gripper_std
        return std  # (A,)

    def project(self, actions: torch.Tensor) -> torch.Tensor:
        """Clamp (..., A) into the box; pinned dims become exactly 0."""
        w = self.half_width(actions.device).to(actions.dtype)
        return torch.maximum(torch.minimum(actions, w), -w)

    def finish(self, plan: torch.Tensor) -> torch.Tensor:
        """The plan a planner returns: projected, gripper rounded to 0 when small (and, with
        gripper_snap, any other gripper move made whole)."""
        plan = self.project(plan) + 0.0  # + 0.0 turns -0.0 into 0.0 on pinned dims
        g = plan[..., GRIPPER_DIM]
        g = torch.where(g.abs() < self.gripper_round, torch.zeros_like(g), g)
        plan[..., GRIPPER_DIM] = torch.sign(g) * self.gripper_max if self.gripper_snap else g
        return plan


def shift_plan(plan: torch.Tensor, fill: str = "zero") -> torch.Tensor:
    """Warm start for the next step: drop the executed first step, append a last one.

    plan (..., H, A) -> (..., H, A); fill "zero" appends zeros (TD-MPC2), "repeat" repeats
    the last step. With H = 1 "zero" gives a cold start and "repeat" the previous action.
    """
    if fill not in ("zero", "repeat"):
        raise ValueError(f"fill must be 'zero' or 'repeat', got {fill!r}")
    last = plan[..., -1:, :] if fill == "repeat" else torch.zeros_like(plan[..., -1:, :])
    return torch.cat([plan[..., 1:, :], last], dim=-2)


def initial_mean(
    horizon: int,
    init_mean: torch.Tensor | None,
    num_problems: int | None,
    space: ActionSpace,
    device: torch.device | str | None,
    generator: Generators = None,
) -> tuple[torch.Tensor, bool]:
    """The starting mean (E, H, A), projected into the box, and whether the caller gave one problem.

    init_mean may be (H, A) or (E, H, A); without it the mean starts at 0 (the paper). The
    device is the given one, else init_mean's, else the generator's.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if init_mean is None:
        device = device if device is not None else generator_device(generator)
        e = 1 if num_problems is None else num_problems
        mean = torch.zeros(e, horizon, ACTION_DIM, device=device)
        single = num_problems is None
    else:
        mean = init_mean.detach().to(device=device if device is not None else init_mean.device)
        single = mean.dim() == 2
        mean = mean[None] if single else mean.clone()
        if single and num_problems is not None:
            mean = mean.expand(num_problems, -1, -1).clone()
            single = False
        if mean.shape[1:] != (horizon, ACTION_DIM):
            raise ValueError(f"init_mean must be (H, A) or (E, H, A) with H={horizon}, A={ACTION_DIM}; "
                             f"got {tuple(init_mean.shape)}")
        if num_problems is not None and mean.shape[0] != num_problems:
            raise ValueError(f"init_mean has {mean.shape[0]} problems but num_problems={num_problems}")
    if not mean.is_floating_point():
        mean = mean.float()
    return space.project(mean), single


def score(cost_fn: CostFn, samples: torch.Tensor) -> torch.Tensor:
    """Evaluate samples (E, S, H, A) in one batch -> cost (E, S); NaN and +-inf become +inf (worst).

    Raises if every cost of some problem is non-finite: nothing can be ranked.
    """
    e, s = samples.shape[:2]
    cost = cost_fn(samples.flatten(0, 1))  # (E*S,)
    if cost.shape != (e * s,):
        raise ValueError(f"cost_fn must map (B, H, A) to (B,) with B={e * s}; got {tuple(cost.shape)}")
    cost = cost.reshape(e, s)
    finite = torch.isfinite(cost)
    if not finite.any(dim=1).all():
        bad = (~finite.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"cost_fn returned no finite cost (all NaN or inf) for problem(s) {bad}")
    return torch.where(finite, cost, torch.full_like(cost, float("inf")))  # (E, S)


def momenta(config, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dim momentum of the mean and of the std (A,), the gripper's own, for CEM-style refits
    mean <- (1 - m) elite_mean + m mean; `config` has momentum_mean/_std(_gripper)."""
    m_mean = torch.full_like(like, config.momentum_mean)
    m_std = torch.full_like(like, config.momentum_std)
    m_mean[GRIPPER_DIM] = config.momentum_mean_gripper
    m_std[GRIPPER_DIM] = config.momentum_std_gripper
    return m_mean, m_std


def gaussian(mean: torch.Tensor, std: torch.Tensor, samples: int, generator: Generators) -> torch.Tensor:
    """Draw `samples` sequences around mean (E, H, A) with std (E, H, A) -> (E, S, H, A)."""
    e, h, a = mean.shape
    eps = draw("randn", (e, samples, h, a), generator, mean.device, mean.dtype)
    return mean[:, None] + std[:, None] * eps  # (E, S, H, A)


def output(plan: torch.Tensor, single: bool, space: ActionSpace) -> torch.Tensor:
    """Finish the plan (E, H, A) and drop the problem dim for a single problem."""
    plan = space.finish(plan.detach())
    return plan[0] if single else plan
