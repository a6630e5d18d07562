"""What varies from episode to episode, and how it is applied to the model.

`RandomizationConfig` holds the ranges (constructor arguments of every environment);
`sample_episode` draws one episode's appearance and start from the environment's seeded
generator; `apply_appearance` writes it into the model (object shape, size, mass, colour,
camera pose, lights). Table, robot and background colours never change.

Colour palettes are disjoint sets of RGB colours: "train" for training data, "heldout" for the
zero-shot evaluation split (EVAL_PROTOCOL.md); an explicit list of RGB triples also works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np

PALETTES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "train": (
        (0.85, 0.12, 0.12),  # red
        (0.12, 0.62, 0.20),  # green
        (0.12, 0.30, 0.90),  # blue
        (0.95, 0.80, 0.08),  # yellow
        (0.95, 0.48, 0.08),  # orange
        (0.55, 0.18, 0.80),  # purple
    ),
    "heldout": (
        (0.08, 0.80, 0.85),  # cyan
        (0.90, 0.15, 0.65),  # magenta
        (0.60, 0.90, 0.15),  # lime
        (0.50, 0.28, 0.12),  # brown
        (1.00, 0.62, 0.72),  # pink
        (0.05, 0.42, 0.40),  # teal
    ),
}
OBJECT_KINDS = ("cube", "cylinder")
DENSITY = 500.0  # kg/m^3 (a 4.5 cm cube weighs ~46 g)

Box2 = tuple[tuple[float, float], tuple[float, float]]
Box3 = tuple[tuple[float, float, float], tuple[float, float, float]]


@dataclass(frozen=True)
class RandomizationConfig:
    """Per-episode randomisation ranges (all lengths in m, angles in rad, base frame)."""

    object_kind: str = "cube"  # "cube", "cylinder" (a cup-like upright cylinder) or "random"
    object_size_range: tuple[float, float] = (0.04, 0.05)  # cube edge / cylinder diameter
    # cylinder height / diameter. Taller than ~1.1 and a pushing gripper's hand (which starts 4.5 cm
    # above the fingertips) catches the top rim and tips the cylinder over
    cylinder_aspect: float = 1.0
    palette: str | tuple[tuple[float, float, float], ...] = "train"  # name or RGB triples in [0, 1]
    start_region: Box2 = ((0.44, -0.12), (0.60, 0.12))  # object start xy
    goal_region: Box2 = ((0.41, -0.15), (0.63, 0.15))  # Push / PickPlace target xy, Reach goal xy
    tcp_start_region: Box3 = ((0.44, -0.08, 0.12), (0.54, 0.08, 0.16))  # TCP at reset
    object_yaw_range: float = np.pi / 4  # object yaw uniform in +- this
    camera_pos_jitter: float = 0.0  # exterior camera position, uniform +- per axis (0 = fixed)
    camera_rot_jitter: float = 0.0  # exterior camera rotation, uniform +- per axis
    light_jitter: float = 0.0  # light intensity x (1 +- j) and direction +- j per axis
    colors: tuple[tuple[float, float, float], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.object_kind not in (*OBJECT_KINDS, "random"):
            kinds = (*OBJECT_KINDS, "random")
            raise ValueError(f"object_kind must be one of {kinds}, got {self.object_kind!r}")
        lo, hi = self.object_size_range
        if not 0.02 <= lo <= hi <= 0.07:
            raise ValueError(f"object_size_range needs 0.02 <= lo <= hi <= 0.07 m, got {(lo, hi)}")
        if isinstance(self.palette, str):
            if self.palette not in PALETTES:
                raise ValueError(f"unknown palette {self.palette!r}; named palettes: {sorted(PALETTES)}")
            colors = PALETTES[self.palette]
        else:
            colors = tuple(tuple(float(c) for c in rgb) for rgb in self.palette)
            if not colors or any(len(rgb) != 3 or not all(0 <= c <= 1 for c in rgb) for rgb in colors):
                raise ValueError("palette must be a name or a non-empty list of RGB triples in [0, 1]")
        object.__setattr__(self, "colors", colors)
        for name in ("camera_pos_jitter", "camera_rot_jitter", "light_jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass(frozen=True)
class EpisodeSample:
    """One episode's draw: appearance and start state."""

    kind: str
    size: float  # cube edge or cylinder diameter (m)
    color: tuple[float, float, float]
    object_xy: np.ndarray
    object_yaw: float
    tcp_start: np.ndarray
    camera_dpos: np.ndarray
    camera_drot: np.ndarray
    light_gain: float
    light_ddir: np.ndarray

    @property
    def half_height(self) -> float:
        """Height of the object's centre above the table when it rests upright."""
        return self.size / 2 if self.kind == "cube" else self.size * self._aspect / 2

    _aspect: float = 1.0


def sample_episode(rng: np.random.Generator, cfg: RandomizationConfig) -> EpisodeSample:
    """Draw an episode's appearance and start from `rng` (the environment's np_random)."""
    kind = cfg.object_kind if cfg.object_kind != "random" else OBJECT_KINDS[rng.integers(len(OBJECT_KINDS))]
    size = float(rng.uniform(*cfg.object_size_range))
    color = cfg.colors[rng.integers(len(cfg.colors))]
    (x0, y0), (x1, y1) = cfg.start_region
    object_xy = rng.uniform((x0, y0), (x1, y1))
    yaw = float(rng.uniform(-cfg.object_yaw_range, cfg.object_yaw_range)) if kind == "cube" else 0.0
    tcp_start = rng.uniform(*cfg.tcp_start_region)
    camera_dpos = rng.uniform(-1, 1, 3) * cfg.camera_pos_jitter
    camera_drot = rng.uniform(-1, 1, 3) * cfg.camera_rot_jitter
    light_gain = 1.0 + float(rng.uniform(-1, 1)) * cfg.light_jitter
    light_ddir = rng.uniform(-1, 1, 3) * cfg.light_jitter
    return EpisodeSample(kind, size, color, object_xy, yaw, tcp_start, camera_dpos, camera_drot,
                         light_gain, light_ddir, _aspect=cfg.cylinder_aspect)


class AppearanceWriter:
    """Writes an `EpisodeSample` into a model, from the model's compiled values as the baseline."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = model
        self.box = model.geom("object_box").id
        self.cylinder = model.geom("object_cylinder").id
        self.body = model.body("object").id
        self.camera = model.camera("exterior").id
        self.cam_pos0 = model.cam_pos[self.camera].copy()
        self.cam_quat0 = model.cam_quat[self.camera].copy()
        self.light_diffuse0 = model.light_diffuse.copy()
        self.light_dir0 = model.light_dir.copy()
        self.group0 = int(model.geom_group[self.box])

    def apply(self, ep: EpisodeSample, data: mujoco.MjData) -> None:
        m = self.model
        active, hidden = (self.box, self.cylinder) if ep.kind == "cube" else (self.cylinder, self.box)
        r, h = ep.size / 2, ep.half_height
        if ep.kind == "cube":
            m.geom_size[active] = (r, r, r)
            m.geom_rbound[active] = np.sqrt(3) * r
            m.geom_aabb[active] = (0, 0, 0, r, r, r)
            mass = DENSITY * ep.size**3
            inertia = np.full(3, mass * ep.size**2 / 6)
        else:
            m.geom_size[active] = (r, h, 0)
            m.geom_rbound[active] = np.hypot(r, h)
            m.geom_aabb[active] = (0, 0, 0, r, r, h)
            mass = DENSITY * np.pi * r**2 * 2 * h
            ixx = mass * (3 * r**2 + (2 * h) ** 2) / 12
            inertia = np.array([ixx, ixx, mass * r**2 / 2])
        m.geom_rgba[active] = (*ep.color, 1.0)
        m.geom_group[active], m.geom_group[hidden] = self.group0, 3  # group 3 is not rendered
        m.geom_contype[active], m.geom_conaffinity[active] = 3, 1  # 3: also hits the table's rim
        m.geom_contype[hidden] = m.geom_conaffinity[hidden] = 0
        m.body_mass[self.body] = mass
        m.body_inertia[self.body] = inertia
        m.body_ipos[self.body] = 0
        m.body_iquat[self.body] = (1, 0, 0, 0)
        m.cam_pos[self.camera] = self.cam_pos0 + ep.camera_dpos
        dq = np.zeros(4)
        mujoco.mju_euler2Quat(dq, ep.camera_drot, "xyz")
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, dq, self.cam_quat0)
        m.cam_quat[self.camera] = quat
        m.light_diffuse[:] = self.light_diffuse0 * ep.light_gain
        direction = self.light_dir0 + ep.light_ddir
        m.light_dir[:] = direction / np.linalg.norm(direction, axis=1, keepdims=True)
        mujoco.mj_setConst(m, data)  # mass-dependent constants (constraint scaling, subtree masses)


def object_quat(yaw: float) -> np.ndarray:
    """Quaternion (w x y z) of an upright object turned by `yaw` about z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def as_palette(palette: str | Sequence[Sequence[float]]) -> str | tuple[tuple[float, float, float], ...]:
    """Normalise a palette argument into something hashable for the frozen config."""
    if isinstance(palette, str):
        return palette
    return tuple(tuple(float(c) for c in rgb) for rgb in palette)
