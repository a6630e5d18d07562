"""How much of the object each camera shows at each sub-goal image.

    python benchmarks/bench_occlusion.py --tasks Push --seeds 16
    python benchmarks/bench_occlusion.py --tasks Grasp Push PickPlace --seeds 16

Latent planning toward a goal image can only place the object where the image shows it. The env's
reset renders the first frame, every sub-goal image it offers and the goal image, with the object
painted magenta for the count only (development seeds, both views); we count the object's pixels
in each view, as a share of what the exterior camera shows at the episode's start (hand up and
away). A sub-goal whose image hides the object leaves the energy to the hand and arm alone.
Reported per sub-goal: the median share over seeds, and how many seeds show under a quarter of it.
"""

from __future__ import annotations

import argparse

import numpy as np

from ami_robot.envs import view_key
from ami_robot.episodes import make_env

MAGENTA = (1.0, 0.0, 1.0, 1.0)


def object_pixels(frame: np.ndarray) -> int:
    """Pixels of the magenta object, shading included: red and blue alike and well above green."""
    rgb = frame.astype(np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    low, high = np.minimum(r, b), np.maximum(r, b)
    return int(np.sum((low > 40) & (g < 0.35 * low) & (np.abs(r - b) < 0.3 * high)))


def visibility(task: str, seed: int, views: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Object pixels per view in the first frame, each sub-goal image and the goal image of one
    episode, all rendered by the env's own reset with the object painted magenta."""
    env = make_env(task, palette="heldout", views=views, image_size=64, subgoals="all")
    base = env.unwrapped
    appearance = base._appearance
    paint = appearance.apply

    def apply_then_paint(ep, data) -> None:
        paint(ep, data)
        for name in ("object_box", "object_cylinder"):
            base.model.geom_rgba[base.model.geom(name).id] = MAGENTA

    appearance.apply = apply_then_paint
    obs, info = env.reset(seed=seed)
    env.close()
    names = base.subgoal_names
    if len(info["subgoal_steps"]) != len(names):
        raise RuntimeError(f"{task} seed {seed}: the expert missed a sub-goal; pick other seeds")
    counts = {"start": {v: object_pixels(obs[view_key(v)]) for v in views}}
    for k, name in enumerate(names):
        counts[name] = {v: object_pixels(info[view_key(v, "subgoal_")][k]) for v in views}
    counts["goal"] = {v: object_pixels(info[view_key(v, "goal_")]) for v in views}
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["Push"])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--seed-start", type=int, default=20000, help="development seeds: 20,000+")
    parser.add_argument("--views", nargs="+", default=["exterior", "wrist"])
    args = parser.parse_args()
    if args.seed_start < 20000:
        parser.error("use the development seeds (--seed-start >= 20000)")
    views = tuple(args.views)
    print(f"object pixels as a share of the exterior view's at the start (median over {args.seeds} "
          "development seeds; in brackets, seeds under 0.25)")
    print("| task | moment | " + " | ".join(views) + " |")
    print("|---|---|" + "---|" * len(views))
    for task in args.tasks:
        seeds = range(args.seed_start, args.seed_start + args.seeds)
        episodes = [visibility(task, seed, views) for seed in seeds]
        for name in episodes[0]:
            cells = []
            for view in views:
                share = np.array([ep[name][view] / max(ep["start"]["exterior"], 1) for ep in episodes])
                cells.append(f"{np.median(share):.2f} ({int(np.sum(share < 0.25))}/{len(share)})")
            print(f"| {task} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
