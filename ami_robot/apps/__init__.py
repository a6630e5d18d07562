"""The `ami-robot` command: one Hydra app per subcommand, configs in ami_robot/conf.

    ami-robot demo                      zero-shot pick-and-place by pure latent planning
    ami-robot plan goal=PATH.png        plan towards a goal image of yours
    ami-robot eval                      the evaluation protocol (resumable JSONL, Wilson intervals)
    ami-robot bench                     several policies side by side on the same seeds
    ami-robot energy                    the world model's energy landscape around a true action
    ami-robot memory                    the retrieval policy's memory of training frames
    ami-robot locator                   the retrieval policy's object locator (a probe on the encoder)
    ami-robot train-subgoals            a task's sub-goal maker, for planning from one final goal image
    ami-robot export                    the encoder and AC predictor as ONNX (plan with model=onnx)
    ami-robot collect | train-encoder | train-predictor | reproduce
                                        data and training (reproduce = all three, memory and locator)

Every subcommand takes Hydra overrides (`key=value`, `group=option`, `--multirun`, `--cfg job`).
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module in ami_robot.apps, function, config name in ami_robot/conf)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("demo", "run", "demo"),
    "plan": ("plan", "run", "plan"),
    "eval": ("evaluate", "run_eval", "eval"),
    "bench": ("evaluate", "run_bench", "bench"),
    "energy": ("energy", "run", "energy"),
    "collect": ("training", "run_collect", "collect"),
    "train-encoder": ("training", "run_train_encoder", "train_encoder"),
    "train-predictor": ("training", "run_train_predictor", "train_predictor"),
    "reproduce": ("training", "run_reproduce", "reproduce"),
    "memory": ("training", "run_memory", "memory"),
    "locator": ("training", "run_locator", "locator"),
    "train-subgoals": ("training", "run_train_subgoals", "train_subgoals"),
    "export": ("export", "run", "export"),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return
    command = argv.pop(0)
    if command not in COMMANDS:
        sys.exit(f"ami-robot: unknown command {command!r}; choose from: {', '.join(COMMANDS)}")
    module_name, function_name, config_name = COMMANDS[command]
    task_function = getattr(importlib.import_module(f"ami_robot.apps.{module_name}"), function_name)

    import hydra  # imported here so `ami-robot --help` stays instant

    from ami_robot.apps.common import AppError

    sys.argv = [f"ami-robot {command}", *argv]
    app = hydra.main(version_base=None, config_path="../conf", config_name=config_name)(task_function)
    try:
        app()
    except AppError as exc:
        print(exc.message, file=sys.stderr)
        sys.exit(exc.code)
