"""Environment benchmark: speed, scripted-expert success, long-run stability.

    .venv/bin/python benchmarks/bench_envs.py [--episodes 100] [--stability-steps 10000]
                                              [--sizes 64 128 256] [--skip-speed] [--skip-experts]
                                              [--skip-stability]

1. Speed: control steps per second of `env.step` (physics + IK for 0.25 s, then the exterior
   camera rendered at the image size), beside a bare MuJoCo loop on the same model in the same
   run (the same 50 `mj_step` calls and one render per step, no controller, no Python env).
2. Experts: the scripted expert on seeds 0..N-1 of every task (object kind "random", training
   palette), success read at the end of the budget, with a Wilson 95% interval.
3. Stability: bang-bang and uniform random actions at the action bounds, a reset every 50 steps;
   counts NaN states, MuJoCo warnings, steps where the arm crushes the object into the table
   (soft-contact penetration > 15 mm) and segments after which the released object does not
   rest on the table top.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import gymnasium as gym
import mujoco
import numpy as np

import ami_robot.envs  # noqa: F401  (registers the ids; sets MUJOCO_GL first)
from ami_robot.envs import TASK_SPECS, ScriptedExpert
from ami_robot.envs.sim import load_model


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def bench_speed(sizes: list[int], steps: int = 400) -> None:
    print(f"\n== speed: control steps/s (0.25 s of physics + IK + exterior render), {steps} steps each ==")
    print(f"{'size':>6} {'env.step':>10} {'bare mujoco':>12} {'env/bare':>9} {'physics only':>13}")
    rng = np.random.default_rng(0)
    for size in sizes:
        env = gym.make("ami_robot/Push-v0", image_size=size).unwrapped
        env.reset(seed=0)
        actions = (rng.uniform(-0.5, 0.5, (steps, 7)) * env.action_space.high).astype(np.float32)
        for action in actions[:20]:  # warm-up (renderer, caches)
            env.step(action)
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        env_rate = steps / (time.perf_counter() - start)
        n_sub = env.sim.n_substeps
        env.close()

        model = load_model()
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
        renderer = mujoco.Renderer(model, size, size)
        camera = model.camera("exterior").id
        for _ in range(20):
            mujoco.mj_step(model, data, nstep=n_sub)
            renderer.update_scene(data, camera=camera)
            renderer.render()
        start = time.perf_counter()
        for _ in range(steps):
            mujoco.mj_step(model, data, nstep=n_sub)
            renderer.update_scene(data, camera=camera)
            renderer.render()
        bare_rate = steps / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(steps):
            mujoco.mj_step(model, data, nstep=n_sub)
        physics_rate = steps / (time.perf_counter() - start)
        renderer.close()
        ratio = env_rate / bare_rate
        print(f"{size:>4}px {env_rate:>10.0f} {bare_rate:>12.0f} {ratio:>9.2f} {physics_rate:>13.0f}")


def bench_experts(episodes: int, image_size: int = 64) -> None:
    print(f"\n== scripted experts: seeds 0..{episodes - 1}, object_kind='random', {image_size} px ==")
    print(f"{'task':>10} {'budget':>6} {'success':>8} {'rate':>6} {'wilson 95%':>15} {'median dist':>12} "
          f"{'goal realised':>14} {'expert steps':>13} {'s/episode':>10}")
    for name, spec in TASK_SPECS.items():
        env = gym.make(spec.env_id, image_size=image_size, object_kind="random")
        expert = ScriptedExpert(env)
        wins, distances, realised, steps, failures = 0, [], 0, [], []
        start = time.perf_counter()
        for seed in range(episodes):
            obs, info = env.reset(seed=seed)
            expert.reset()
            realised += info["goal_realised"]
            steps.append(info["expert_steps"])
            for _ in range(spec.budget):
                obs, _, _, _, last = env.step(expert.act(obs))
            wins += last["success"]
            distances.append(last["distance"])
            if not last["success"]:
                failures.append((seed, info["object_kind"], round(last["distance"], 3)))
        seconds = (time.perf_counter() - start) / episodes
        low, high = wilson(wins, episodes)
        print(f"{name:>10} {spec.budget:>6} {wins:>4}/{episodes:<3} {wins / episodes:>6.2f} "
              f"[{low:.2f}, {high:.2f}]{'':>3} {np.median(distances):>12.4f} {realised:>9}/{episodes:<4} "
              f"{np.mean(steps):>13.1f} {seconds:>10.2f}")
        if failures:
            print(f"{'':>10} failures (seed, kind, final distance m): {failures[:10]}")
        env.close()


def lowest_point(base) -> float:
    """Height above the table top of the object's lowest point, from its pose and shape."""
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, base.sim.object_quat())
    axes_z = rot.reshape(3, 3)[2]
    r = base.episode.size / 2
    if base.episode.kind == "cube":
        reach = r * np.abs(axes_z).sum()
    else:
        reach = base.episode.half_height * abs(axes_z[2]) + r * math.sqrt(max(0.0, 1 - axes_z[2] ** 2))
    return float(base.sim.object_pos()[2] - reach)


def bench_stability(steps: int) -> None:
    print(f"\n== stability: {steps} steps per task of extreme random actions, reset every 50 ==")
    print("(pressed: steps with the object >15 mm into the table, crushed there by the arm; not resting:")
    print(" segments after which the object, released and left alone, does not rest on the table top)")
    print(f"{'task':>10} {'NaN':>5} {'warnings':>9} {'pressed':>8} {'deepest (mm)':>13} {'not resting':>12} "
          f"{'steps/s':>8}")
    release = np.array([0, 0, 0.1, 0, 0, 0, -1.0])
    for index, (name, spec) in enumerate(TASK_SPECS.items()):
        env = gym.make(spec.env_id, image_size=32, object_kind="random")
        base = env.unwrapped
        rng = np.random.default_rng(7 + index)  # a different action stream and episodes per task
        high = env.action_space.high
        nans = warnings = pressed = not_resting = 0
        deepest = 0.0
        start = time.perf_counter()
        for step in range(steps):
            if step % 50 == 0:
                env.reset(seed=100_000 * (index + 1) + step)
            action = rng.choice([-1.0, 1.0], 7) * high if rng.random() < 0.5 else rng.uniform(-high, high)
            base.simulate(action)
            data = base.sim.data
            if not (np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))):
                nans += 1
                env.reset(seed=step)
                continue
            warnings += sum(w.number for w in data.warning)
            low = lowest_point(base)
            deepest = min(deepest, low)
            pressed += low < -0.015
            if step % 50 == 49:
                for _ in range(3):
                    base.simulate(release)
                not_resting += lowest_point(base) < -0.003
        rate = steps / (time.perf_counter() - start)
        print(f"{name:>10} {nans:>5} {warnings:>9} {pressed:>8} {-deepest * 1000:>13.1f} {not_resting:>12} "
              f"{rate:>8.0f}")
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--stability-steps", type=int, default=10_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-experts", action="store_true")
    parser.add_argument("--skip-stability", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"mujoco {mujoco.__version__}, gymnasium {gym.__version__}, "
          f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}")
    if not args.skip_speed:
        bench_speed(args.sizes)
    if not args.skip_experts:
        bench_experts(args.episodes)
    if not args.skip_stability:
        bench_stability(args.stability_steps)


if __name__ == "__main__":
    main()
