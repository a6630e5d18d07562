"""LeRobotDataset folders in and out, through the `lerobot` library (the optional extra `[lerobot]`).

    with LeRobotWriter("data/play-lerobot", collection={...}, views=("exterior", "wrist")) as w:
        w.add(episode)                              # collect(cfg, out_format="lerobot") does this
    data = load_trajectories("data/play-lerobot")   # reads it through read_lerobot (meta/info.json)

A folder is a LeRobotDataset v3 (parquet under data/, one mp4 per camera under videos/,
meta/info.json), at 4 fps, with these features:

    observation.images.exterior  video (S, S, 3)  the exterior camera (and .wrist: a second view)
    observation.state            float32 (7,)     EE xyz (m), EE extrinsic xyz Euler (rad), gripper in [0, 1]
    action                       float32 (7,)     the DROID delta convention (ami_robot.data.actions); the
                                                   action taken at this frame, zeros at an episode's last

Our per-episode records (id, task, seed, policy, success, ...) and the collection settings ride in
meta/ami_robot.json, which lerobot ignores; a dataset without it reads with its episode indices as
ids. Reading accepts any LeRobotDataset whose state and action are 7-D and whose cameras are square
and of one size; the views are stacked top to bottom as our frames are (envs.stack_views), exterior
first. lerobot is imported inside the functions, so the rest of ami_robot never needs it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

from ami_robot.data.actions import ACTION_DIM, STATE_DIM
from ami_robot.data.shards import Episode, atomic_write_bytes

FPS = 4  # one action per 0.25 s (DESIGN.md)
INFO = "meta/info.json"  # what marks a folder as a LeRobotDataset
SIDECAR = "meta/ami_robot.json"  # our per-episode records, beside lerobot's own metadata
STATE, ACTION, IMAGES = "observation.state", "action", "observation.images."
STATE_NAMES = ["ee_x", "ee_y", "ee_z", "ee_rx", "ee_ry", "ee_rz", "gripper"]
ACTION_NAMES = ["dx", "dy", "dz", "drx", "dry", "drz", "dgripper"]
INSTALL = "pip install -e '.[lerobot]'"
EXPECTED = (f"{STATE} ({STATE_DIM},) float [EE xyz, EE extrinsic xyz Euler, gripper], {ACTION} "
            f"({ACTION_DIM},) float [delta xyz, delta Euler, delta gripper], and one or more cameras "
            f"{IMAGES}<view> (S, S, 3) video or image, all of one size (exterior first, then wrist)")


class LeRobotError(RuntimeError):
    """lerobot is not installed, or a folder is not a LeRobotDataset that ami-robot can train on."""


def _lerobot(module: str = "lerobot.datasets.lerobot_dataset") -> ModuleType:
    """Import a lerobot module, or say how to install the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise LeRobotError(
            f"LeRobot datasets need the optional `lerobot` package: {INSTALL} (in the ami-robot checkout; "
            f"it brings lerobot 0.4, which runs on torch < 2.11). Importing {module} failed: {exc}"
        ) from exc


def is_lerobot_dataset(root: str | os.PathLike[str]) -> bool:
    return (Path(root) / INFO).is_file()


def video_backend() -> str:
    """torchcodec where its FFmpeg libraries load (lerobot's default), else PyAV through torchvision."""
    try:
        importlib.import_module("torchcodec.decoders")
    except (ImportError, RuntimeError, OSError):  # torchcodec raises RuntimeError without FFmpeg
        return "pyav"
    return "torchcodec"


# -- writing --------------------------------------------------------------------------------------


def features_for(views: Sequence[str], size: int) -> dict[str, dict[str, Any]]:
    """The LeRobot features of our episodes: one square video per view, state, action."""
    cams = {f"{IMAGES}{view}": {"dtype": "video", "shape": (size, size, 3),
                                "names": ["height", "width", "channels"]} for view in views}
    return {**cams,
            STATE: {"dtype": "float32", "shape": (STATE_DIM,), "names": STATE_NAMES},
            ACTION: {"dtype": "float32", "shape": (ACTION_DIM,), "names": ACTION_NAMES}}


class LeRobotWriter:
    """Writes whole episodes into a new LeRobotDataset folder (ShardWriter's interface, no resume).

    The dataset is created at the first episode, when the frame size is known; `close` finalises
    it (parquet footers, meta/ami_robot.json). A folder that already exists is refused: a LeRobot
    recording cut off before `close` cannot be read, so collect shards where a run may be killed.
    """

    def __init__(self, root: str | os.PathLike[str], collection: dict[str, Any] | None = None,
                 views: Sequence[str] = ("exterior",), fps: int = FPS, vcodec: str = "libsvtav1") -> None:
        self.root = Path(root)
        if self.root.exists() and any(self.root.iterdir()):
            raise LeRobotError(f"{self.root} exists and is not empty; a LeRobot dataset is written in one go "
                               "(no resume): choose a new out_dir, or collect shards (format=shards)")
        if not views:
            raise ValueError("views must name at least one camera view, e.g. ('exterior',)")
        self._lerobot = _lerobot()
        self.collection, self.views, self.fps, self.vcodec = dict(collection or {}), tuple(views), fps, vcodec
        self._dataset: Any = None
        self._records: list[dict[str, Any]] = []

    @property
    def done_ids(self) -> set[int]:
        return {r["id"] for r in self._records}

    def _create(self, size: int) -> Any:
        self.root.parent.mkdir(parents=True, exist_ok=True)
        if self.root.exists():
            self.root.rmdir()  # empty (checked in __init__); lerobot creates the folder itself
        return self._lerobot.LeRobotDataset.create(
            repo_id=f"local/{self.root.name}", fps=self.fps, features=features_for(self.views, size),
            root=self.root, robot_type="ami_robot_arm", use_videos=True, vcodec=self.vcodec)

    def add(self, episode: Episode) -> None:
        """Write one episode: L + 1 frames, each with its state and the action taken there."""
        frames = episode.frames  # (L+1, V*S, S, 3)
        size = frames.shape[2]
        if frames.shape[1] != len(self.views) * size:
            raise ValueError(f"episode {episode.id}: frames {frames.shape[1:]} do not stack the "
                             f"{len(self.views)} views {list(self.views)} of {size} px")
        if episode.id in self.done_ids:
            raise ValueError(f"episode {episode.id} is already stored in {self.root}")
        if self._dataset is None:
            self._dataset = self._create(size)
        actions = np.concatenate([episode.actions, np.zeros((1, ACTION_DIM), np.float32)])  # (L+1, 7)
        task = str(episode.meta.get("task", "play"))
        keys = [f"{IMAGES}{view}" for view in self.views]
        for k in range(len(frames)):
            cams = {key: frames[k, v * size : (v + 1) * size] for v, key in enumerate(keys)}  # (S, S, 3) each
            self._dataset.add_frame({**cams, STATE: episode.states[k].astype(np.float32), ACTION: actions[k],
                                     "task": task})
        self._dataset.save_episode(parallel_encoding=False)  # the collection workers hold the cores
        self._records.append({**episode.meta, "id": int(episode.id)})

    def close(self) -> None:
        """Finalise the dataset and write our records beside lerobot's metadata."""
        if self._dataset is None:
            return
        self._dataset.finalize()
        self._dataset = None
        images = self.root / "images"  # lerobot's per-frame PNGs, deleted after encoding; the folders stay
        if images.is_dir() and not any(p.is_file() for p in images.rglob("*")):
            for folder in sorted(images.rglob("*"), reverse=True):
                folder.rmdir()
            images.rmdir()
        record = {"format": "ami-robot-lerobot", "version": 1, "views": list(self.views),
                  "collection": self.collection, "episodes": self._records}
        atomic_write_bytes(self.root / SIDECAR, (json.dumps(record, indent=1) + "\n").encode())

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def write_lerobot(root: str | os.PathLike[str], episodes: Sequence[Episode],
                  views: Sequence[str] = ("exterior",), collection: dict[str, Any] | None = None) -> Path:
    """Write whole episodes as a new LeRobotDataset folder; returns the folder."""
    with LeRobotWriter(root, collection, views) as writer:
        for episode in episodes:
            writer.add(episode)
    return Path(root)


# -- reading --------------------------------------------------------------------------------------


def camera_keys(features: dict[str, dict[str, Any]]) -> list[str]:
    """The camera features in our view order: exterior, wrist, then the others by name."""
    cams = [k for k, f in features.items() if f.get("dtype") in ("video", "image")]
    first = [f"{IMAGES}exterior", f"{IMAGES}wrist"]
    return [k for k in first if k in cams] + sorted(k for k in cams if k not in first)


def check_features(root: Path, features: dict[str, dict[str, Any]]) -> list[str]:
    """The camera keys, or LeRobotError naming what was expected and what the dataset has."""
    problems = []
    for key, dim in ((STATE, STATE_DIM), (ACTION, ACTION_DIM)):
        shape = tuple(features.get(key, {}).get("shape", ()))
        if key not in features:
            problems.append(f"no {key}")
        elif shape != (dim,):
            problems.append(f"{key} has shape {shape}, not ({dim},)")
    cams = camera_keys(features)
    shapes = {tuple(features[k]["shape"]) for k in cams}
    if not cams:
        problems.append("no camera (a video or image feature)")
    elif len(shapes) != 1 or any(len(s) != 3 or s[0] != s[1] or s[2] != 3 for s in shapes):
        problems.append(f"cameras of shapes {sorted(shapes)}, not square (S, S, 3) views of one size")
    if problems:
        found = ", ".join(f"{k} {tuple(f.get('shape', ()))} {f.get('dtype')}" for k, f in features.items())
        raise LeRobotError(f"{root} is a LeRobotDataset that ami-robot cannot train on: "
                           f"{'; '.join(problems)}. Expected {EXPECTED}. Found: {found}")
    return cams


def _missing_files(root: Path, info: dict[str, Any]) -> list[str]:
    """What a local LeRobotDataset needs before lerobot opens it (else it would try the Hub)."""
    needed = ["meta/episodes/*/*.parquet", "data/*/*.parquet"]
    needed += [f"videos/{k}/*/*.mp4" for k, f in info["features"].items() if f.get("dtype") == "video"]
    return [pattern for pattern in needed if not any(root.glob(pattern))]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decode(dataset: Any, ep: int, key: str, timestamps: np.ndarray, backend: str) -> np.ndarray:
    """One episode's frames of one camera as uint8 (T, S, S, 3)."""
    if dataset.meta.features[key]["dtype"] == "image":
        row = dataset.meta.episodes[ep]
        lo, hi = row["dataset_from_index"], row["dataset_to_index"]
        images = dataset.hf_dataset.select(range(lo, hi))[key]  # (C, S, S) floats in [0, 1] each
        stacked = np.stack([np.asarray(img) for img in images])
    else:
        video = _lerobot("lerobot.datasets.video_utils")
        start = dataset.meta.episodes[ep][f"videos/{key}/from_timestamp"]  # episodes share one mp4
        path = dataset.root / dataset.meta.get_video_file_path(ep, key)
        with warnings.catch_warnings():  # PyAV runs through torchvision's reader, deprecated for torchcodec
            warnings.filterwarnings("ignore", message=".*video decoding and encoding capabilities")
            stacked = video.decode_video_frames(path, (start + timestamps).tolist(), dataset.tolerance_s,
                                                backend).numpy()  # (T, C, S, S) floats in [0, 1]
    return np.rint(stacked.transpose(0, 2, 3, 1) * 255).clip(0, 255).astype(np.uint8)


def read_lerobot(root: str | os.PathLike[str],
                 episode_filter: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """A LeRobotDataset folder as the fields of Trajectories (load_trajectories builds it from them):
    every episode, views stacked top to bottom.

    `episode_filter(meta) -> bool` keeps a subset, as for load_trajectories. Refuses (LeRobotError)
    a dataset whose state or action is not 7-D or whose cameras are not square views of one size.
    """
    root = Path(root)
    lerobot = _lerobot()
    info = _lerobot("lerobot.datasets.utils").load_info(root)
    cams = check_features(root, info["features"])
    missing = _missing_files(root, info)
    if missing:
        raise LeRobotError(f"{root} is an incomplete LeRobotDataset: nothing matches {', '.join(missing)}")
    backend = video_backend()
    dataset = lerobot.LeRobotDataset(f"local/{root.name}", root=root, video_backend=backend)
    table = dataset.hf_dataset.with_format("numpy")
    episode_index = np.asarray(table["episode_index"]).reshape(-1)
    order = np.lexsort((np.asarray(table["frame_index"]).reshape(-1), episode_index))  # episode, then time
    states = np.asarray(table[STATE], dtype=np.float32).reshape(-1, STATE_DIM)[order]
    actions = np.asarray(table[ACTION], dtype=np.float32).reshape(-1, ACTION_DIM)[order]
    timestamps = np.asarray(table["timestamp"], dtype=np.float64).reshape(-1)[order]
    episode_index = episode_index[order]

    records = _records(root, dataset)
    chunks, starts, lengths, ids, metas = [], [], [], [], []
    files: dict[str, list[int]] = {}  # data and video files -> the episodes they hold, for the card
    cursor = 0
    episodes, firsts, counts = np.unique(episode_index, return_index=True, return_counts=True)
    for ep, first, count in zip(episodes, firsts, counts, strict=True):
        rows = np.arange(first, first + count)  # rows are sorted by episode above
        meta = dict(records[ep])
        ep_id = int(meta.pop("id"))
        if len(rows) < 2 or (episode_filter is not None and not episode_filter(meta)):
            continue
        views = [_decode(dataset, int(ep), key, timestamps[rows], backend) for key in cams]
        chunks.append((rows, np.concatenate(views, axis=1)))  # (T, V*S, S, 3)
        paths = [dataset.meta.get_data_file_path(int(ep))]
        paths += [dataset.meta.get_video_file_path(int(ep), k) for k in cams if k in dataset.meta.video_keys]
        for path in paths:
            files.setdefault(str(path), []).append(ep_id)
        starts.append(cursor)
        lengths.append(len(rows))
        ids.append(ep_id)
        metas.append(meta)
        cursor += len(rows)
    if not chunks:
        raise LeRobotError(f"{root} holds no episode of 2 or more frames (that the filter keeps)")
    keep = np.concatenate([rows for rows, _ in chunks])
    actions = actions[keep]
    actions[np.asarray(starts) + np.asarray(lengths) - 1] = 0.0  # no action follows an episode's last frame
    return {
        "frames": np.concatenate([frames for _, frames in chunks]),  # (F, V*S, S, 3) uint8
        "states": states[keep],  # (F, 7)
        "actions": actions,  # (F, 7)
        "starts": np.asarray(starts, dtype=np.int64),
        "lengths": np.asarray(lengths, dtype=np.int64),
        "episode_ids": np.asarray(ids, dtype=np.int64),
        "meta": metas,
        "shards_used": [{"file": name, "sha256": _sha256(root / name), "episodes": eps}
                        for name, eps in sorted(files.items())],
        "root": str(root),
    }


def _records(root: Path, dataset: Any) -> list[dict[str, Any]]:
    """Per-episode records: ours from meta/ami_robot.json, else lerobot's index and first task."""
    sidecar = root / SIDECAR
    if sidecar.is_file():
        records = json.loads(sidecar.read_text())["episodes"]
        if len(records) == dataset.meta.total_episodes:
            return records
        warnings.warn(f"{sidecar} lists {len(records)} episodes, the dataset has "
                      f"{dataset.meta.total_episodes}: edited since; reading lerobot's episode indices",
                      stacklevel=3)
    tasks = dataset.meta.episodes["tasks"]
    return [{"id": ep, "task": str((tasks[ep] or ["play"])[0])} for ep in range(dataset.meta.total_episodes)]
