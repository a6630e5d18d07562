"""Does torch.compile pay for planning on this machine? Eval's planning step, eager and compiled.

    python benchmarks/bench_compile.py --checkpoint checkpoints/two_view                    # float32
    python benchmarks/bench_compile.py --checkpoint checkpoints/two_view --dtype bfloat16
    python benchmarks/bench_compile.py --tiny                                               # CI

One planning step as `ami-robot eval` makes it by default: iCEM 64 x 3 (or --planner cem, --samples,
--iterations) at horizon 1 for --episodes
episodes planned in one batch (eval's batch_size), from random frames (the work does not depend on
them). Timed eagerly, then with `model.compile=true` (WorldModel.compile_planning), the fastest of --repeats
runs after one warm-up; the first compiled step, compilation included, is reported apart. Also the
largest difference between the two plans.
"""

from __future__ import annotations

import argparse
import time

import torch

from ami_robot.apps.common import DTYPES
from ami_robot.checkpoints import SHIPPED_DIR
from ami_robot.planners import CEMConfig, cem
from ami_robot.planners.icem import ICEMConfig, icem
from ami_robot.world_model import WorldModel

from timing import best_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(SHIPPED_DIR), help="a model folder (default: one-view)")
    parser.add_argument("--tiny", action="store_true", help="a random micro model instead (CI)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=16, help="episodes planned in one batch")
    parser.add_argument("--planner", default="icem", choices=["icem", "cem"])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=None,
                        help="WorldModel.plan_chunk_rows: candidate rows per predictor call (0: every "
                             "episode in one call; default: the model's own)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]

    def load() -> WorldModel:
        if args.tiny:
            return WorldModel.random("micro", "micro", seed=0, dtype=dtype)
        return WorldModel.from_checkpoint(args.checkpoint, dtype=dtype)

    eager, compiled = load(), load().compile_planning()
    for wm in (eager, compiled):
        if args.chunk_rows is not None:
            wm.plan_chunk_rows = args.chunk_rows or None
    size, e = eager.image_size, args.episodes
    frames = torch.randint(0, 256, (e, size * eager.views, size, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = eager.encode(frames)
    config, plan = (ICEMConfig, icem) if args.planner == "icem" else (CEMConfig, cem)
    cfg = config(samples=args.samples, iterations=args.iterations, topk=min(10, args.samples))

    def step(wm: WorldModel) -> torch.Tensor:
        with torch.no_grad():
            cost = wm.planning_cost(z[:, None], torch.zeros(e, 1, 7), z.roll(1, 0), 1)
            return plan(cost, cfg, num_problems=e, generator=torch.Generator().manual_seed(0))

    t_eager = best_seconds(lambda: step(eager), args.repeats)
    start = time.perf_counter()
    step(compiled)
    t_first = time.perf_counter() - start
    t_compiled = best_seconds(lambda: step(compiled), args.repeats)
    diff = float((step(eager) - step(compiled)).abs().max())
    print(f"{args.planner} {args.samples} x {args.iterations}, {e} episodes a batch, {tuple(z.shape[1:])} "
          f"tokens a frame, {args.dtype}, {args.threads} thread(s), "
          f"{eager.plan_chunk_rows or 'all'} candidate rows a predictor call")
    print("| predictor | s per planning step | s per episode's action | speed-up |")
    print("|---|---|---|---|")
    print(f"| eager | {t_eager:.3f} | {t_eager / e:.3f} | 1.00x |")
    print(f"| compiled | {t_compiled:.3f} | {t_compiled / e:.3f} | {t_eager / t_compiled:.2f}x |")
    print(f"first compiled step, compilation included: {t_first:.1f} s; largest plan difference {diff:.1e}")


if __name__ == "__main__":
    main()
