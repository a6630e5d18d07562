"""Every subcommand's own settings as one frozen dataclass: checked before any work starts.

The yaml in ami_robot/conf gives the values (it is the one place defaults live); these classes
give their types and allowed ranges. `app_args` merges a job's config onto its class through
OmegaConf's schema, so a value of the wrong type names its field (`episodes=abc`), a value out of
range says what is allowed (`batch_size=0`), and a key that no setting has fails loudly
(`+foo=1`) instead of being ignored. Config groups (env, planner, model, policy, the trainers'
nodes) are left to the code that builds them, which checks them the same way.

A new subcommand adds its class to ARGS; tests/apps/test_bad_inputs.py then runs the shared
table of bad inputs against it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from omegaconf import DictConfig

from ami_robot.apps.common import AppError, build_dataclass, to_dict
from ami_robot.data.collection import OUT_FORMATS
from ami_robot.edge import ExportConfig
from ami_robot.envs import TASK_SPECS
from ami_robot.world_model import METRICS

TRAINING_SEEDS = 10_000  # seeds below this are the training split (EVAL_PROTOCOL.md)
DEVICES = ("auto", "cpu", "cuda")


def _at_least(obj: Any, name: str, low: int | float, what: str) -> None:
    value = getattr(obj, name)
    if value < low:
        raise ValueError(f"{name} must be >= {low} ({what}), got {name}={value}")


def _task(name: str, value: str) -> None:
    if value not in TASK_SPECS:
        raise ValueError(f"unknown task {value!r} in {name}; choose from {', '.join(TASK_SPECS)}")


def _device(value: str) -> None:
    if value not in DEVICES and not value.startswith("cuda:"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got device={value}")


@dataclass(frozen=True)
class EpisodesArgs:
    """What eval and bench share: which tasks and seeds, how many episodes at once."""

    GROUPS: ClassVar[tuple[str, ...]] = ()
    tasks: tuple[str, ...]
    episodes: int  # per task
    seed_start: int  # first seed; held-out seeds are >= 10,000
    allow_training_seeds: bool  # debugging only: seeds < 10,000
    batch_size: int  # episodes planned in one batch
    video: bool
    save_subgoals: bool  # the frames that show the sub-goals a policy made, as PNGs

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError(f"tasks must name at least one task, e.g. tasks=[Reach]; choose from "
                             f"{', '.join(TASK_SPECS)}")
        for task in self.tasks:
            _task("tasks", task)
        _at_least(self, "episodes", 1, "episodes per task")
        _at_least(self, "seed_start", 0, "seeds are non-negative")
        if self.seed_start < TRAINING_SEEDS and not self.allow_training_seeds:
            raise ValueError(f"seed_start={self.seed_start} lies in the training split (seeds < 10,000); "
                             "published numbers use seeds >= 10,000 (set allow_training_seeds=true to debug)")
        _at_least(self, "batch_size", 1, "episodes planned in one batch")


@dataclass(frozen=True)
class EvalArgs(EpisodesArgs):
    """`ami-robot eval`: the evaluation protocol for one policy."""

    GROUPS: ClassVar[tuple[str, ...]] = ("env", "planner", "model", "policy")
    method: str  # the name the results carry

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.method:
            raise ValueError("method must be a non-empty name (the results carry it)")


@dataclass(frozen=True)
class BenchArgs(EpisodesArgs):
    """`ami-robot bench`: several policies side by side on the same seeds."""

    GROUPS: ClassVar[tuple[str, ...]] = ("env", "planner", "model", "policies")
    methods: tuple[str, ...] | None  # None: every entry of `policies`


@dataclass(frozen=True)
class DemoArgs:
    """`ami-robot demo`: a few zero-shot episodes by pure latent planning, with videos."""

    GROUPS: ClassVar[tuple[str, ...]] = ("env", "planner", "model", "policy")
    task: str
    episodes: int
    seed_start: int
    batch_size: int
    method: str

    def __post_init__(self) -> None:
        _task("task", self.task)
        _at_least(self, "episodes", 1, "episodes to run")
        _at_least(self, "seed_start", 0, "seeds are non-negative")
        _at_least(self, "batch_size", 1, "episodes planned in one batch")


@dataclass(frozen=True)
class PlanArgs:
    """`ami-robot plan`: plan towards goal images of your own."""

    GROUPS: ClassVar[tuple[str, ...]] = ("env", "planner", "model")
    goal: Any  # a path, or a list of paths (sub-goals)
    budgets: tuple[int, ...] | None  # steps per sub-goal but the last
    task: str
    seed: int
    steps: int | None  # None: the task's budget
    energy: str
    subgoal_frames: int  # training resets whose frames show the sub-goals the agent makes

    def __post_init__(self) -> None:
        goals = [self.goal] if isinstance(self.goal, str) else self.goal
        paths = isinstance(goals, (list, tuple)) and all(isinstance(g, str) and g for g in goals)
        if not goals or not paths:
            raise ValueError(f"goal must be a path to an image, or a list of paths (goal=[a.png,b.png]); "
                             f"got goal={self.goal!r}")
        _task("task", self.task)
        _at_least(self, "seed", 0, "seeds are non-negative")
        if self.steps is not None:
            _at_least(self, "steps", 1, "actions to plan; steps=null takes the task's budget")
        if self.budgets is not None and any(b < 1 for b in self.budgets):
            raise ValueError(f"budgets must be >= 1 step each, got budgets={list(self.budgets)}")
        if self.energy not in METRICS:
            raise ValueError(f"energy must be one of {', '.join(METRICS)}, got energy={self.energy}")
        _at_least(self, "subgoal_frames", 0, "training resets that show made sub-goals (0: none)")

    @property
    def goals(self) -> list[str]:
        return [self.goal] if isinstance(self.goal, str) else list(self.goal)


@dataclass(frozen=True)
class EnergyArgs:
    """`ami-robot energy`: the model's energy landscape around a true action."""

    GROUPS: ClassVar[tuple[str, ...]] = ("env", "model")
    task: str
    seed: int
    true_action: tuple[float, ...]  # (dx, dy) in m
    radius: float  # the grid spans +-radius in dx and dy (m)
    points: int  # grid points per axis
    true_frames: bool

    def __post_init__(self) -> None:
        _task("task", self.task)
        _at_least(self, "seed", 0, "seeds are non-negative")
        if len(self.true_action) != 2:
            raise ValueError(f"true_action must be (dx, dy) in m, e.g. true_action=[0.05,-0.03]; "
                             f"got {list(self.true_action)}")
        if not self.radius > 0:
            raise ValueError(f"radius must be > 0 (the grid spans +-radius in m), got radius={self.radius}")
        _at_least(self, "points", 2, "grid points per axis")


@dataclass(frozen=True)
class CollectArgs:
    """`ami-robot collect`: the `collect` node is CollectConfig; `format` is what it writes."""

    GROUPS: ClassVar[tuple[str, ...]] = ("collect",)
    format: str = "shards"  # shards (ours, resumable) or lerobot (a LeRobotDataset v3 folder)

    def __post_init__(self) -> None:
        if self.format not in OUT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(OUT_FORMATS)}, got format={self.format}")


@dataclass(frozen=True)
class TrainEncoderArgs:
    """`ami-robot train-encoder`: JEPA pretraining (the `pretrain` node is PretrainConfig)."""

    GROUPS: ClassVar[tuple[str, ...]] = ("pretrain",)
    data_dir: str
    out_dir: str | None  # None: Hydra's run dir
    device: str
    strict_data: bool

    def __post_init__(self) -> None:
        _device(self.device)


@dataclass(frozen=True)
class TrainPredictorArgs(TrainEncoderArgs):
    """`ami-robot train-predictor`: AC predictor training (the `predictor` node)."""

    GROUPS: ClassVar[tuple[str, ...]] = ("predictor",)
    encoder: str = ""  # the frozen encoder: our .safetensors, or a hub-layout model folder (encoder=???)
    extra_data: tuple[str, ...] = ()  # more dataset folders trained on with data_dir, as one dataset


@dataclass(frozen=True)
class ReproduceArgs:
    """`ami-robot reproduce`: its settings are the `reproduce` node (ReproduceConfig)."""

    GROUPS: ClassVar[tuple[str, ...]] = ("reproduce",)


@dataclass(frozen=True)
class MemoryArgs:
    """`ami-robot memory`: the retrieval policy's memory of training frames."""

    GROUPS: ClassVar[tuple[str, ...]] = ("model",)
    data_dir: str
    out: str | None


@dataclass(frozen=True)
class LocatorArgs:
    """`ami-robot locator`: the retrieval policy's object locator (`training` is LocatorTrainConfig)."""

    GROUPS: ClassVar[tuple[str, ...]] = ("model", "training")
    data_dir: str
    val_dir: str
    out: str | None


@dataclass(frozen=True)
class TrainSubgoalsArgs:
    """`ami-robot train-subgoals`: a task's sub-goal maker (`training` is SubgoalTrainConfig)."""

    GROUPS: ClassVar[tuple[str, ...]] = ("model", "training")
    task: str
    seeds: int
    out: str | None

    def __post_init__(self) -> None:
        _task("task", self.task)
        _at_least(self, "seeds", 2, "training resets: some to train on, some held out")


@dataclass(frozen=True)
class ExportArgs:
    """`ami-robot export`: the model as ONNX graphs (the other settings are ExportConfig's fields)."""

    GROUPS: ClassVar[tuple[str, ...]] = ("model",)
    out: str | None  # None: Hydra's run dir
    int8: bool
    opset: int
    max_steps: int
    check_rows: int
    check_horizon: int

    def __post_init__(self) -> None:
        self.config  # noqa: B018  (ExportConfig checks the ranges)

    @property
    def config(self) -> ExportConfig:
        return ExportConfig(int8=self.int8, opset=self.opset, max_steps=self.max_steps,
                            check_rows=self.check_rows, check_horizon=self.check_horizon)


ARGS: dict[str, type] = {
    "demo": DemoArgs, "plan": PlanArgs, "eval": EvalArgs, "bench": BenchArgs, "energy": EnergyArgs,
    "collect": CollectArgs, "train-encoder": TrainEncoderArgs, "train-predictor": TrainPredictorArgs,
    "reproduce": ReproduceArgs, "memory": MemoryArgs, "locator": LocatorArgs, "export": ExportArgs,
    "train-subgoals": TrainSubgoalsArgs,
}


def list_fields(cls: type) -> list[str]:
    """The fields of `cls` that take a list (tuple-typed), where a bare word is a common slip."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        options = typing.get_args(hint) if union else (hint,)
        if any(typing.get_origin(o) is tuple for o in options):
            out.append(f.name)
    return out


def app_args(cfg: DictConfig, cls: type, command: str) -> Any:
    """The job's own settings as `cls`, or an AppError naming the key, the value and what is allowed."""
    values = {k: v for k, v in (to_dict(cfg) or {}).items() if k not in cls.GROUPS}
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise AppError(f"unknown key(s) {', '.join(unknown)} for `ami-robot {command}`; its settings are "
                       f"{', '.join(names) or '(none)'}, and its config groups {', '.join(cls.GROUPS)}")
    for name in list_fields(cls):
        if isinstance(values.get(name), str):
            raise AppError(f"{name} takes a list: {name}=[{values[name]}] (with the brackets), "
                           f"got {name}={values[name]}")
    return build_dataclass(cls, values, command)
