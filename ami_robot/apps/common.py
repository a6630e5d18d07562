"""What the apps share: building the world model, planner, policies and output folder from config.

Library code takes dataclasses and plain arguments; this is where Hydra's DictConfig becomes them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import platform
import subprocess
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from ami_robot.checkpoints import SHIPPED_DIR
from ami_robot.edge import MissingExtraError, OnnxWorldModel
from ami_robot.envs import TASK_SPECS, VIEWS, ArmEnv
from ami_robot.hub import CONFIG_NAME, WEIGHTS_NAME, is_hub_folder
from ami_robot.planners import PLANNERS, PlannerConfig
from ami_robot.weights import CheckpointError, sha256_file
from ami_robot.world_model import WorldModel


class AppError(SystemExit):
    """A bad input, reported as one clear line (and exit status 2), never a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(2)  # the exit status; `main` prints the message
        self.message = f"ami-robot: {message}"


def shipped_checkpoint_dir() -> Path:
    """checkpoints/ of this checkout, or of the installed package (ami_robot.checkpoints)."""
    return SHIPPED_DIR


def to_dict(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def env_kwargs(env_cfg: Any) -> dict[str, Any]:
    """The `env` node as ArmEnv keyword arguments; a key ArmEnv does not take is refused by name
    (it would fail only when the first environment is made, as a TypeError)."""
    kwargs = dict(to_dict(env_cfg) or {})
    if kwargs.get("views", "") is None:  # unset: the env's default, or the model's (views_for)
        del kwargs["views"]
    valid = [p for p in inspect.signature(ArmEnv.__init__).parameters if p not in ("self", "render_mode")]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise AppError(f"unknown key(s) {', '.join(f'env.{k}' for k in unknown)}; the env takes "
                       f"{', '.join(f'env.{k}' for k in valid)}")
    return kwargs


def views_for(env: dict[str, Any], world_model: WorldModel | None) -> dict[str, Any]:
    """The env arguments (`env_kwargs`) with `views` the world model's when the config leaves it unset
    (null): a two-view model gets its wrist view without the user having to ask for it."""
    if "views" in env or world_model is None:
        return env
    return {**env, "views": list(VIEWS[: world_model.views])}


def check_task(task: str) -> str:
    if task not in TASK_SPECS:
        raise AppError(f"unknown task {task!r}; choose from {', '.join(TASK_SPECS)}")
    return task


# The keys each `model` kind reads (conf/model/*.yaml); any other key is a typo, refused.
MODEL_KEYS = {"checkpoint": ("kind", "path", "shipped", "device", "dtype", "compile"),
              "random": ("kind", "encoder", "predictor", "seed", "device", "dtype", "compile"),
              "reference": ("kind", "path", "encoder", "predictor", "device", "dtype", "compile"),
              "onnx": ("kind", "path", "precision", "threads")}
# model.dtype of the torch kinds: what the weights and activations are stored in. Energies, latents
# out of encode/rollout and everything a planner sees stay float32 either way.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def model_dtype(value: Any) -> torch.dtype:
    """model.dtype as a torch dtype; float16 is refused for its speed, anything else by name."""
    if value == "float16":
        raise AppError("model.dtype=float16 is refused: CPUs have no fast float16 matmul (measured ~100x "
                       "slower than float32); use model.dtype=bfloat16 (fast on CPUs with bf16 support) "
                       "or model.dtype=float32")
    if not isinstance(value, str) or value not in DTYPES:
        raise AppError(f"model.dtype must be one of {', '.join(DTYPES)}, got model.dtype={value!r}")
    return DTYPES[value]


def build_world_model(model_cfg: DictConfig) -> tuple[WorldModel | OnnxWorldModel, dict[str, Any]]:
    """The world model a `model` config group option describes, and a description for records."""
    cfg = to_dict(model_cfg)
    kind = cfg.get("kind")
    unknown = sorted(set(cfg) - set(MODEL_KEYS.get(kind, cfg)))
    if unknown:
        raise AppError(f"unknown key(s) {', '.join(f'model.{k}' for k in unknown)} for model kind {kind!r}; "
                       f"it reads {', '.join(f'model.{k}' for k in MODEL_KEYS[kind])}")
    if kind == "random" and (isinstance(cfg.get("seed", 0), bool) or not isinstance(cfg.get("seed", 0), int)):
        raise AppError(f"model.seed must be an integer, got model.seed={cfg['seed']!r}")
    device = cfg.get("device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise AppError("model.device=cuda but no CUDA device is visible; use model.device=cpu")
    dtype = model_dtype(cfg.get("dtype", "float32")) if kind != "onnx" else torch.float32
    if not isinstance(cfg.get("compile", False), bool):
        raise AppError(f"model.compile must be true or false, got model.compile={cfg['compile']!r}")
    try:
        if kind == "checkpoint":
            return _compiled(*_checkpoint_model(checkpoint_folder(cfg), device, dtype), cfg)
        if kind == "random":
            wm = WorldModel.random(cfg["encoder"], cfg["predictor"], seed=cfg.get("seed", 0), device=device,
                                   dtype=dtype)
            return _compiled(wm, {"kind": kind, "encoder": cfg["encoder"], "predictor": cfg["predictor"],
                                  "seed": cfg.get("seed", 0), **_dtype_record(dtype)}, cfg)
        if kind == "reference":
            wm = WorldModel.from_reference(cfg["path"], cfg["encoder"], cfg["predictor"], device=device,
                                           dtype=dtype)
            return _compiled(wm, {"kind": kind, "path": cfg["path"], "sha256": sha256_file(cfg["path"]),
                                  **_dtype_record(dtype)}, cfg)
        if kind == "onnx":
            return _onnx_model(cfg)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        raise AppError(f"cannot load the model ({kind}): {exc}") from None
    except MissingExtraError as exc:
        raise AppError(f"model=onnx: {exc}") from None
    raise AppError(f"unknown model kind {kind!r}; choose model=shipped, model=random, model=reference or "
                   "model=onnx")


def _compiled(wm: WorldModel, record: dict[str, Any],
              cfg: dict[str, Any]) -> tuple[WorldModel, dict[str, Any]]:
    """model.compile=true: plan with the predictor under torch.compile (WorldModel.compile_planning); the
    record says so only when on, so older records stay comparable."""
    if not cfg.get("compile", False):
        return wm, record
    return wm.compile_planning(), {**record, "compile": True}


def checkpoint_folder(cfg: dict[str, Any]) -> Path:
    """model.path, else the shipped model model.shipped names: null the package's checkpoints/,
    a name one of its sub-folders (two_view)."""
    if cfg.get("path"):
        return Path(cfg["path"])
    name = cfg.get("shipped")
    if not name:
        return shipped_checkpoint_dir()
    names = sorted(d.name for d in shipped_checkpoint_dir().iterdir() if is_hub_folder(d))
    if name not in names:
        raise AppError(f"model.shipped={name!r} is not a shipped model; choose one of {names}, "
                       "or null for the default, or give model.path=FOLDER")
    return shipped_checkpoint_dir() / name


def _dtype_record(dtype: torch.dtype) -> dict[str, str]:
    """The dtype for a model's record, only when not the default (older records stay comparable)."""
    return {} if dtype == torch.float32 else {"dtype": str(dtype).removeprefix("torch.")}


def _checkpoint_model(folder: Path, device: str, dtype: torch.dtype) -> tuple[WorldModel, dict[str, Any]]:
    """model.path=FOLDER in either of our layouts (the hub layout, ami_robot/hub.py; or encoder and
    predictor .safetensors with their JSON cards), and its record: the files' sha256."""
    if is_hub_folder(folder):
        wm = WorldModel.from_pretrained(folder, device=device, dtype=dtype)
        return wm, {"kind": "checkpoint", "path": str(folder), "layout": "hub",
                    "sha256": sha256_file(folder / WEIGHTS_NAME), **_dtype_record(dtype)}
    files = [folder / "encoder.safetensors", folder / "predictor.safetensors"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise AppError(f"no checkpoint at {folder}: neither the hub layout ({CONFIG_NAME} + {WEIGHTS_NAME}) "
                       f"nor the per-file one ({', '.join(missing)} missing); train one with `ami-robot "
                       "reproduce` or point model.path at a folder holding either")
    wm = WorldModel.from_checkpoint(folder, device=device, dtype=dtype)
    return wm, {"kind": "checkpoint", "path": str(folder), "encoder_sha256": sha256_file(files[0]),
                "predictor_sha256": sha256_file(files[1]), **_dtype_record(dtype)}


def _onnx_model(cfg: dict[str, Any]) -> tuple[OnnxWorldModel, dict[str, Any]]:
    """The graphs `ami-robot export` wrote (model=onnx), and their record: the export's source and files."""
    if not cfg.get("path") or cfg["path"] == "???":
        raise AppError("model=onnx needs model.path=FOLDER: the folder `ami-robot export` wrote (its out=)")
    threads = cfg.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise AppError(f"model.threads must be null or an integer >= 1, got model.threads={threads!r}")
    wm = OnnxWorldModel(cfg["path"], cfg.get("precision", "fp32"), threads)
    return wm, {"kind": "onnx", "path": str(cfg["path"]), "precision": wm.precision,
                "source": wm.card.get("source"), "files": wm.card["files"][wm.precision]}


def build_planner(planner_cfg: DictConfig) -> PlannerConfig:
    """The planner config a `planner` node describes, type-checked field by field (a value of the
    wrong type names its field, an unknown field lists the valid ones)."""
    cfg = dict(to_dict(planner_cfg))
    name = cfg.pop("name", None)
    if name not in PLANNERS:
        raise AppError(f"bad planner config: unknown planner {name!r}; choose from {sorted(PLANNERS)}")
    return build_dataclass(PLANNERS[name][0], cfg, "planner config")


def policy_factory(
    policy_cfg: DictConfig, world_model: Callable[[], WorldModel], planner: PlannerConfig
) -> Any:
    """A factory for the policy a `_target_` config names, with the shared world model (built on
    first use by `world_model()`) and planner bound where its constructor takes them. A policy's
    own `planner` node replaces the shared planner, built and checked the same way. A policy class
    with `check_args` (given its arguments and what is bound) refuses bad ones here, before any env
    is made, named by their config key (policies.sb3.path)."""
    key = policy_cfg._get_full_key(None) if isinstance(policy_cfg, DictConfig) else ""
    if policy_cfg.get("planner") is not None:  # built here: the policy cannot read a DictConfig
        planner = build_planner(policy_cfg.planner)
        policy_cfg = OmegaConf.create({k: v for k, v in policy_cfg.items() if k != "planner"})
    try:
        factory = instantiate(policy_cfg, _partial_=True)
    except Exception as exc:  # Hydra wraps import and argument errors alike
        raise AppError(f"cannot build policy {policy_cfg.get('_target_')!r}: {exc}") from None
    params = inspect.signature(factory.func).parameters
    bound: dict[str, Any] = {}
    if "world_model" in params and "world_model" not in factory.keywords:
        bound["world_model"] = world_model()
    if "planner" in params and "planner" not in factory.keywords:
        bound["planner"] = planner
    check = getattr(factory.func, "check_args", None)
    if check is not None:
        try:
            check(**factory.keywords, **bound)
        except ValueError as exc:  # its message starts with the argument's name
            raise AppError(f"{key or 'policy'}.{exc}") from None
        except ImportError as exc:
            raise AppError(f"{key or 'policy'}: {exc}") from None
    return functools.partial(factory, **bound) if bound else factory


def output_dir() -> Path:
    """Hydra's run directory for this job, checked writable."""
    from hydra.core.hydra_config import HydraConfig

    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise AppError(f"output directory {out} is not writable ({exc.strerror}); "
                       "choose another with hydra.run.dir=PATH") from None
    return out


def machine_record() -> dict[str, Any]:
    """Where and how a result was produced: machine, threads, commit (and whether tracked files
    differed from it: a result measured on uncommitted code says so)."""

    def git(*args: str) -> str | None:
        try:
            run = subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                                 cwd=Path(__file__).resolve().parent)
        except OSError:
            return None
        return run.stdout.strip() if run.returncode == 0 else None

    commit = git("rev-parse", "HEAD") or None
    changes = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"machine": platform.machine(), "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "commit": commit,
            "uncommitted_changes": None if changes is None else bool(changes),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def structured(cls: type) -> DictConfig:
    """OmegaConf's schema of a dataclass (field types checked, unknown keys refused), writable: a
    frozen dataclass makes read-only nodes, which would refuse every override."""
    node = OmegaConf.structured(cls)
    _writable(node)
    return node


def _writable(node: DictConfig) -> None:
    OmegaConf.set_readonly(node, False)
    for key in node:
        if isinstance(node._get_node(key), DictConfig):
            _writable(node._get_node(key))


def build_dataclass(cls: type, values: Any, where: str = "") -> Any:
    """A (frozen) dataclass from a config mapping, merged onto OmegaConf's schema of it: nested
    dataclasses keep their fields' own defaults, unknown keys and wrong types fail loudly (with the
    valid keys listed)."""
    schema, values = structured(cls), to_dict(values) or {}
    try:
        _clear_given_dicts(schema, values)
        return _with_tuples(OmegaConf.to_object(OmegaConf.merge(schema, values)))
    except ConfigKeyError as exc:
        parent, _, key = (exc.full_key or "").rpartition(".")
        node = OmegaConf.select(schema, parent) if parent else schema
        inside = ".".join(k for k in (where, parent) if k) or cls.__name__
        raise AppError(f"unknown key(s) {[key]} in {inside}; valid: {sorted(node)}") from None
    except OmegaConfBaseException as exc:  # a wrong type or a missing value: name the field
        key = getattr(exc, "full_key", None)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        field_name = f" setting {key}" if key else ""
        expected = _expected(cls, key) if key else None
        allowed = f"; it takes {expected}" if expected else ""
        raise AppError(f"bad {where or cls.__name__}{field_name}: {first}{allowed}") from None
    except (TypeError, ValueError) as exc:  # __post_init__: a value out of its range
        raise AppError(f"bad {where or cls.__name__}: {exc}") from None


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _expected(cls: type, key: str) -> str | None:
    """What the dataclass field at dotted `key` takes, in words (None when it cannot tell)."""
    hint: Any = cls
    for part in key.split("."):
        if not dataclasses.is_dataclass(hint):
            return None
        hints = typing.get_type_hints(hint)
        if part not in hints:
            return None
        hint = hints[part]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        options = [o for o in typing.get_args(hint) if o is not type(None)] if union else [hint]
        hint = options[0] if len(options) == 1 else hint
    if typing.get_origin(hint) is tuple:
        inner = _TYPE_WORDS.get(typing.get_args(hint)[0], "values") if typing.get_args(hint) else "values"
        return f"a list of {inner.removeprefix('an ').removeprefix('a ')}s in brackets, e.g. [..]"
    word = _TYPE_WORDS.get(hint)
    nullable = "null or " if "None" in str(typing.get_type_hints(cls).get(key, "")) else ""
    return f"{nullable}{word}" if word else None


def _clear_given_dicts(schema: DictConfig, values: dict[str, Any]) -> None:
    """A mapping field given a value takes that value whole (as `cls(**values)` would), instead of
    OmegaConf's key-by-key merge into the default mapping; nested dataclasses still merge."""
    for key, value in values.items():
        node = schema._get_node(key) if key in schema else None
        if not isinstance(node, DictConfig) or not isinstance(value, dict):
            continue
        if dataclasses.is_dataclass(OmegaConf.get_type(node)):
            _clear_given_dicts(node, value)
        else:
            schema[key] = {}


def _with_tuples(obj: Any) -> Any:
    """OmegaConf gives lists for tuple fields; a frozen config holds tuples (hashable, comparable)."""
    hints = typing.get_type_hints(type(obj))
    changed = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            changed[f.name] = _with_tuples(value)
        elif isinstance(value, list) and typing.get_origin(hints[f.name]) is tuple:
            changed[f.name] = tuple(value)
    return dataclasses.replace(obj, **changed) if changed else obj
