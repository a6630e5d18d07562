"""SB3Policy: a Stable-Baselines3 model (the `model.zip` its `save` writes) in the bench harness.

The model must have been trained on the task's goal observation (`ami_robot.envs.make_goal_env`,
envs/goals.py); the policy builds that observation from the simulator each step, so it is a
privileged, state-based row beside the pixel planners, like the expert and CEM on the simulator.

    ami-robot bench methods=[sb3,random] policies.sb3.path=model.zip tasks=[Reach]

Loading unpickles nothing. SB3 keeps tensors in .pth files, which it opens with `weights_only=True`,
and the Python objects of its `data` entry (policy class, spaces, schedules, training state) as
cloudpickle; each of those is replaced by the object ami-robot knows it must be (the algorithm's
MultiInputPolicy, the task's goal spaces) or by None for training state that acting never reads.
A file whose `policy_kwargs` are pickled (an `activation_fn`, say) is refused: the network could
not be rebuilt without running its pickle.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from ami_robot.envs import ACTION_HIGH, ACTION_LOW, goal_observation, goal_observation_space
from ami_robot.envs.goals import arm_action, position_action_space

# The algorithms with Box actions, by the module their policy classes live in (stable_baselines3.<it>.
# policies): DDPG acts with TD3's policy, A2C with PPO's; `auto` takes the first of each.
FAMILIES = {"sac": ("SAC",), "td3": ("TD3", "DDPG"), "common": ("PPO", "A2C")}
ALGORITHMS = tuple(name for family in FAMILIES.values() for name in family)
SERIALIZED = ":serialized:"  # how SB3 marks a cloudpickled entry of `data`


def _import_sb3() -> Any:
    try:
        import stable_baselines3
    except ImportError:
        raise ImportError("running a Stable-Baselines3 model needs the `rl` extra: "
                          "pip install -e '.[rl]' (or pip install stable-baselines3)") from None
    return stable_baselines3


def read_header(path: str | Path | None) -> dict[str, Any]:
    """The `data` entry of an SB3 model file, its pickled objects left as text; ValueError naming `path`."""
    if not path:
        raise ValueError("path is not set: give the model.zip that Stable-Baselines3's `save` wrote")
    file = Path(path)
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        raise ValueError(f"path={path}: {what}; give the model.zip that Stable-Baselines3's `save` wrote")
    try:
        with zipfile.ZipFile(file) as archive:
            names = set(archive.namelist())
            if not {"data", "policy.pth"} <= names:
                raise ValueError(f"path={path}: a zip without SB3's `data` and `policy.pth` entries")
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"path={path}: not a Stable-Baselines3 model file ({exc})") from None
    if not isinstance(data, dict) or "policy_class" not in data:
        raise ValueError(f"path={path}: no policy class in its `data` entry; not a Stable-Baselines3 model")
    return data


def algorithm_name(data: dict[str, Any], algorithm: str = "auto") -> str:
    """The algorithm of a model file (`auto`: from its policy's module), checked against `algorithm`."""
    module = str(data["policy_class"].get("__module__", "")) if isinstance(data["policy_class"], dict) else ""
    parts = module.split(".")
    family = FAMILIES.get(parts[1]) if len(parts) == 3 and parts[0] == "stable_baselines3" else None
    if algorithm.upper() not in ("AUTO", *ALGORITHMS):
        raise ValueError(f"algorithm={algorithm}: choose auto or one of {', '.join(ALGORITHMS)}")
    if family is None:
        raise ValueError(f"algorithm={algorithm}: the file's policy class comes from {module!r}, not from "
                         f"a Stable-Baselines3 algorithm with Box actions ({', '.join(ALGORITHMS)})")
    if algorithm.upper() == "AUTO":
        return family[0]
    if algorithm.upper() not in family:
        raise ValueError(f"algorithm={algorithm}, but the file holds a {'/'.join(family)} policy")
    return algorithm.upper()


def action_size(data: dict[str, Any]) -> int:
    """7 for a model trained with the env's action (`rotation=True`), 4 for the position action."""
    space = data.get("action_space")
    shape = space.get("_shape") if isinstance(space, dict) else None
    if shape not in ([4], [7]):
        raise ValueError(f"its action space has shape {shape}; a goal env's is [4] (dx, dy, dz, gripper) "
                         "or [7] (rotation=True)")
    return shape[0]


def load_model(path: str | Path, task: str, algorithm: str = "auto", device: str = "cpu") -> Any:
    """The SB3 model in `path`, trained on `task`'s goal observation, loaded for acting only."""
    data = read_header(path)
    name = algorithm_name(data, algorithm)
    try:
        size = action_size(data)
    except ValueError as exc:
        raise ValueError(f"path={path}: {exc}") from None
    full = spaces.Box(np.array(ACTION_LOW, np.float32), np.array(ACTION_HIGH, np.float32))
    cls = getattr(_import_sb3(), name)
    if isinstance(data.get("policy_kwargs"), dict) and SERIALIZED in data["policy_kwargs"]:
        raise ValueError(f"path={path}: its policy_kwargs hold Python objects (an activation_fn?), which "
                         "ami-robot does not unpickle; train with plain values (net_arch=[...])")
    from stable_baselines3.common.buffers import DictReplayBuffer

    known = {
        "policy_class": cls.policy_aliases["MultiInputPolicy"],
        "observation_space": goal_observation_space(task),
        "action_space": full if size == 7 else position_action_space(),
        "replay_buffer_class": DictReplayBuffer,  # HER's needs an env; acting needs no buffer
        "train_freq": 1, "learning_rate": 0.0, "clip_range": 0.2,  # schedules acting never reads
    }
    pickled = [k for k, v in data.items() if isinstance(v, dict) and SERIALIZED in v]
    custom = {key: known.get(key) for key in pickled}
    extra = {"buffer_size": 1, "replay_buffer_kwargs": {}} if "buffer_size" in data else {}
    try:
        return cls.load(path, device=device, custom_objects=custom, **extra)
    except (RuntimeError, ValueError, KeyError, AssertionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"path={path}: cannot load it as a {name} policy on {task}'s goal observation "
                         f"{goal_observation_space(task)['observation'].shape} ({first})") from None


class SB3Policy:
    """A Stable-Baselines3 model acting on the goal observation (privileged: read from the simulator).

    path: the model.zip; algorithm: auto (from the file) or SAC, TD3, DDPG, PPO, A2C; deterministic:
    the policy's mean action (false: sampled); device: where the networks run (small MLPs: cpu).
    A model with 4-D actions (the goal env's default, `rotation=False`) acts through `arm_action`.
    """

    def __init__(self, env: Any, path: str | None = None, algorithm: str = "auto",
                 deterministic: bool = True, device: str = "cpu") -> None:
        self.env = env
        self.model = load_model(path, env.unwrapped.task_name, algorithm, device)
        self.deterministic = deterministic

    @staticmethod
    def check_args(path: str | None = None, algorithm: str = "auto", **_: Any) -> None:
        """Refuse a missing or unreadable file before any environment is made (bench, eval)."""
        data = read_header(path)
        algorithm_name(data, algorithm)
        try:
            action_size(data)
        except ValueError as exc:
            raise ValueError(f"path={path}: {exc}") from None
        _import_sb3()

    def reset(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        action, _ = self.model.predict(goal_observation(self.env), deterministic=self.deterministic)
        action = np.asarray(action, np.float32)
        return action if action.shape == (7,) else arm_action(action)
