"""`ami-robot energy`: the world model's energy over (dx, dy) around a true action, as a plot.

From a start frame, a known action is executed in the simulator and the frame it leads to is the
goal. The energy of every (dx, dy) on a grid (dz, rotation and gripper 0) is the model's predicted
latent distance to that goal; a useful model has its minimum near the true action (V-JEPA 2-AC's
figure). With `true_frames=true` the same grid is also scored on the simulator's own frames
(encoder and energy alone, no predictor): DESIGN.md's second error row.
"""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig

from ami_robot.apps.common import build_world_model, env_kwargs, output_dir, write_json
from ami_robot.apps.schemas import EnergyArgs, app_args
from ami_robot.episodes import make_env


def _grid(radius: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-radius, radius, points)
    dx, dy = np.meshgrid(axis, axis, indexing="xy")
    return axis, np.stack([dx.ravel(), dy.ravel()], axis=1)  # (P*P, 2)


def run(cfg: DictConfig) -> None:
    args = app_args(cfg, EnergyArgs, "energy")
    env_args = env_kwargs(cfg.env)
    out = output_dir()
    world_model, record = build_world_model(cfg.model)
    env = make_env(args.task, **env_args)
    obs, _ = env.reset(seed=args.seed)
    base = env.unwrapped
    true_action = np.zeros(7, np.float32)
    true_action[:2] = args.true_action
    snapshot = base.get_sim_state()
    goal_obs, *_ = env.step(true_action)
    base.set_sim_state(snapshot)

    axis, xy = _grid(args.radius, args.points)
    actions = np.zeros((len(xy), 1, 7), np.float32)
    actions[:, 0, :2] = xy
    z = world_model.encode(obs["pixels"][None])  # (1, N, D)
    z_goal = world_model.encode(goal_obs["pixels"][None])
    state = torch.as_tensor(obs["state"][None, None])
    cost = world_model.planning_cost(z[:, None], state, z_goal, horizon=1)
    with torch.no_grad():
        energy = cost(torch.as_tensor(actions)).cpu().numpy().reshape(args.points, args.points)
    maps = {"model": energy}
    if args.true_frames:
        frames = []
        for a in actions[:, 0]:
            base.set_sim_state(snapshot)
            base.simulate(a)
            frames.append(base.render_frame())
        base.set_sim_state(snapshot)
        with torch.no_grad():
            z_true = world_model.encode(np.stack(frames))
            maps["simulator_frames"] = world_model.energy(z_true, z_goal).cpu().numpy().reshape(args.points,
                                                                                                args.points)
    env.close()
    result = {"true_action_xy": list(map(float, args.true_action)), "model": record}
    for name, grid in maps.items():
        i = int(np.argmin(grid))
        best = xy[i]
        result[name] = {"argmin_xy": best.tolist(),
                        "argmin_error_m": float(np.linalg.norm(best - np.asarray(args.true_action)))}
    _plot(out / "energy.png", axis, maps, np.asarray(args.true_action))
    write_json(out / "energy.json", result)
    for name in maps:
        print(f"{name}: minimum at (dx, dy) = ({result[name]['argmin_xy'][0]:+.3f}, "
              f"{result[name]['argmin_xy'][1]:+.3f}) m, {100 * result[name]['argmin_error_m']:.1f} cm "
              f"from the true action ({args.true_action[0]:+.3f}, {args.true_action[1]:+.3f})")
    print(f"plot {out / 'energy.png'}")


def _plot(path, axis: np.ndarray, maps: dict[str, np.ndarray], true_xy: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 3.6), squeeze=False)
    extent = (axis[0], axis[-1], axis[0], axis[-1])
    for ax, (name, grid) in zip(axes[0], maps.items(), strict=True):
        im = ax.imshow(grid, origin="lower", extent=extent, cmap="viridis")
        i, j = np.unravel_index(int(np.argmin(grid)), grid.shape)
        ax.plot(*true_xy, "r*", markersize=12, label="true action")
        ax.plot(axis[j], axis[i], "wx", markersize=9, label="energy minimum")
        ax.set_title(f"energy ({name})")
        ax.set_xlabel("dx (m)")
        ax.set_ylabel("dy (m)")
        fig.colorbar(im, ax=ax)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
