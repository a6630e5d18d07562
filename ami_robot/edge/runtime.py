"""OnnxWorldModel: the exported encoder and predictor under onnxruntime, behind WorldModel's interface.

It offers what the latent policy asks of a world model (`views`, `image_size`, `encode`,
`planning_cost`, `energy`, `rollout`), so `LatentCostModel(OnnxWorldModel(...))` plans through the
same receding-horizon loop as the torch model. Preprocessing, the robot-state propagation between
imagined steps and the energy stay in torch (they are cheap); the networks run in onnxruntime. The
predictor graph is one step with its keys and values passed in and out (ami_robot.edge.graphs), so a
rollout is one session call per imagined step, as the torch model's KV cache makes it.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from ami_robot.models import actions_between, next_state
from ami_robot.planners import ACTION_DIM
from ami_robot.weights import sha256_file
from ami_robot.world_model import METRICS, WorldModel, preprocess_images

CARD = "card.json"
PRECISIONS = ("fp32", "int8")
EXTRA = "pip install -e '.[onnx]'"
KV = tuple[np.ndarray, np.ndarray]  # the predictor's keys and values (depth, B, heads, L, head_dim)


class MissingExtraError(ImportError):
    """onnx or onnxruntime is not installed: the message names the extra that brings them."""


def require(module: str) -> ModuleType:
    """Import an optional dependency of the edge backend, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"the ONNX backend needs {module!r}, which is not installed: {EXTRA} "
                                "(the `onnx` extra: onnx and onnxruntime)") from None


def file_names(precision: str) -> dict[str, str]:
    """The graph files of one precision: encoder.onnx, or encoder.int8.onnx when quantised."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    suffix = "" if precision == "fp32" else f".{precision}"
    return {"encoder": f"encoder{suffix}.onnx", "predictor": f"predictor{suffix}.onnx"}


def read_card(folder: Path) -> dict[str, Any]:
    path = folder / CARD
    if not path.is_file():
        raise FileNotFoundError(f"no {CARD} in {folder}: write one with `ami-robot export out={folder}`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session on `threads` intra-op threads (default: torch's, for a fair race)."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1  # one graph at a time: its ops run in order
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


class OnnxWorldModel:
    """The networks `ami-robot export` wrote to `folder`, run by onnxruntime on the CPU.

    precision: fp32, or int8 (dynamically quantised weights; export with int8=true first). The files'
    sha256 are checked against the card. Not differentiable: the gradient planner cannot use it.
    """

    def __init__(self, folder: str | Path, precision: str = "fp32", threads: int | None = None) -> None:
        names = file_names(precision)  # a bad precision is named before any file is read
        self.folder = Path(folder)
        self.card = read_card(self.folder)
        self.precision = precision
        recorded = self.card.get("files", {}).get(precision)
        if recorded is None:
            hint = " (export with int8=true)" if precision == "int8" else ""
            raise FileNotFoundError(f"{self.folder / CARD} lists no {precision} graphs{hint}; it has "
                                    f"{', '.join(self.card.get('files', {})) or 'none'}")
        self.sessions = {}
        for part, name in names.items():
            path = self.folder / name
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: export again with "
                                        f"`ami-robot export out={self.folder}`")
            if sha256_file(path) != recorded[part]["sha256"]:
                raise ValueError(f"{path} does not match the sha256 on {self.folder / CARD}: the file "
                                 "changed after export; export again")
            self.sessions[part] = session(path, threads)
        enc, pred = self.card["encoder_config"], self.card["predictor_config"]
        self._views, self._image_size = int(pred.get("views", 1)), int(enc["img_size"])
        self._depth, self._heads = int(pred["depth"]), int(pred["heads"])
        self._head_dim = int(pred["dim"]) // self._heads
        self.max_steps = int(self.card["max_steps"])
        self.checkpoint_dir: Path | None = None  # no memory or locator lives beside an export
        self._anchor = torch.zeros(0)  # the device the planners' tensors live on (see `parameters`)

    @property
    def views(self) -> int:
        return self._views

    @property
    def image_size(self) -> int:
        return self._image_size

    def parameters(self) -> Iterator[torch.Tensor]:
        """One empty CPU tensor: callers that find a model's device from its parameters (as
        LatentCostModel does) then plan on the CPU, where onnxruntime's inputs and outputs live."""
        yield self._anchor

    energy = staticmethod(WorldModel.energy)

    # ------------------------------------------------------------------ encode

    @torch.no_grad()
    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, H, W, 3) -> normalised latents z (B, N, D), N = views x patches per view."""
        frames = torch.as_tensor(frames).cpu()
        images = preprocess_images(frames, self.image_size, self.views)  # (B*V, 3, S, S)
        (z,) = self.sessions["encoder"].run(None, {"image": images.numpy()})  # (B*V, n, D)
        z = torch.from_numpy(z)
        return z.reshape(-1, self.views * z.shape[1], z.shape[2])  # (B, V*n, D), view-major

    # ------------------------------------------------------------------ rollout

    def _step(self, z: torch.Tensor, rows: torch.Tensor, actions: torch.Tensor, states: torch.Tensor,
              step: int, past: KV) -> tuple[torch.Tensor, KV]:
        """One predictor step (PredictorStepGraph): z (G, N, D) read by rows (B,) -> (B, N, D); the
        keys and values extended by it."""
        if step >= self.max_steps:
            raise ValueError(f"step {step} is past the {self.max_steps} steps whose RoPE tables the export "
                             "baked in: export with a larger max_steps")
        feeds = {name: np.ascontiguousarray(x.numpy()) for name, x in
                 (("z", z), ("rows", rows), ("actions", actions), ("states", states))}  # slices: made dense
        feeds |= {"step": np.asarray(step, np.int64), "past_keys": past[0], "past_values": past[1]}
        z_next, keys, values = self.sessions["predictor"].run(None, feeds)
        return torch.from_numpy(z_next), (keys, values)

    def _empty_past(self, rows: int) -> KV:
        empty = np.zeros((self._depth, rows, self._heads, 0, self._head_dim), np.float32)
        return empty, empty

    def _context(self, z_context: torch.Tensor, state_context: torch.Tensor,
                 action_context: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if z_context.ndim != 4 or state_context.shape != (*z_context.shape[:2], ACTION_DIM):
            raise ValueError(f"expected z_context (B, C, N, D) and state_context (B, C, 7); got "
                             f"{tuple(z_context.shape)} and {tuple(state_context.shape)}")
        z, s = z_context.detach().float().cpu(), state_context.detach().float().cpu()
        a = actions_between(s) if action_context is None else action_context.detach().float().cpu()
        if a.shape != (s.shape[0], s.shape[1] - 1, ACTION_DIM):
            raise ValueError(f"action_context must be (B, C-1, 7), got {tuple(a.shape)}")
        return z, s, a

    def _prefill(self, z: torch.Tensor, s: torch.Tensor, a: torch.Tensor) -> KV:
        """Keys and values of context steps 0..C-2 for the G context rows, one step at a time (the
        block-causal mask makes that equal to the torch model's one multi-step call)."""
        g = z.shape[0]
        rows, past = torch.arange(g), self._empty_past(g)
        for c in range(z.shape[1] - 1):
            _, past = self._step(z[:, c], rows, a[:, c], s[:, c], c, past)
        return past

    def _imagine(self, past: KV, z_last: torch.Tensor, s_last: torch.Tensor,
                 actions: torch.Tensor) -> torch.Tensor:
        """From the last context frame z_last (G, N, D), state s_last (G, 7) and the context's keys and
        values (G rows), under actions (B, T, 7), B = G * S episode-major -> latents (B, T, N, D)."""
        b, steps = actions.shape[:2]
        g = z_last.shape[0]
        per_group = b // g
        rows = torch.arange(g).repeat_interleave(per_group)  # (B,): each candidate's context row
        past = tuple(np.repeat(p, per_group, axis=1) for p in past)  # (depth, B, h, L, hd)
        s, z, t0 = s_last[rows], z_last, past[0].shape[3] // self._tokens_per_step
        out = []
        for t in range(steps):
            z, past = self._step(z, rows, actions[:, t].contiguous(), s, t0 + t, past)  # (B, N, D)
            out.append(z)
            rows = torch.arange(b)  # from now on every row reads its own prediction
            s = next_state(s, actions[:, t])  # the imagined robot state of the next step
        return torch.stack(out, dim=1)  # (B, T, N, D)

    @property
    def _tokens_per_step(self) -> int:
        pred = self.card["predictor_config"]
        grid = int(pred["img_size"]) // int(pred["patch_size"])
        return 2 + self.views * grid * grid  # action, state, patches

    def _checked_actions(self, actions: torch.Tensor, groups: int) -> torch.Tensor:
        if actions.requires_grad:
            raise TypeError("the onnxruntime backend gives no gradients: plan with planner=cem (or mppi, "
                            "random_shooting), not planner=gradient")
        if actions.ndim != 3 or actions.shape[-1] != ACTION_DIM or actions.shape[0] % groups:
            raise ValueError(f"actions must be (B, T, 7) with B a multiple of {groups}; "
                             f"got {tuple(actions.shape)}")
        return actions.float().cpu()

    @torch.no_grad()
    def rollout(self, z_context: torch.Tensor, state_context: torch.Tensor, actions: torch.Tensor,
                action_context: torch.Tensor | None = None) -> torch.Tensor:
        """WorldModel.rollout: z_context (G, C, N, D), state_context (G, C, 7), actions (B, T, 7)
        -> predicted latents (B, T, N, D)."""
        z, s, a = self._context(z_context, state_context, action_context)
        actions = self._checked_actions(actions, z.shape[0])
        return self._imagine(self._prefill(z, s, a), z[:, -1], s[:, -1], actions)

    # ------------------------------------------------------------------ planning

    def planning_cost(self, z_context: torch.Tensor, state_context: torch.Tensor, z_goal: torch.Tensor,
                      horizon: int, metric: str = "l1",
                      action_context: torch.Tensor | None = None,
                      view_weights: Sequence[float] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """WorldModel.planning_cost: actions (E*S, H, 7) -> energy of the last imagined step (E*S,)."""
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        z, s, a = self._context(z_context, state_context, action_context)
        e = z.shape[0]
        goal = z_goal.detach().float().cpu()
        if goal.shape[0] not in (1, e) or goal.shape[1:] != z.shape[2:]:
            raise ValueError(f"z_goal must be (1 or E, N, D) = (1 or {e}, {z.shape[2]}, {z.shape[3]}); "
                             f"got {tuple(z_goal.shape)}")
        goal = goal.expand(e, -1, -1)  # (E, N, D)
        past = self._prefill(z, s, a)
        z_last, s_last = z[:, -1], s[:, -1]

        @torch.no_grad()
        def cost(actions: torch.Tensor) -> torch.Tensor:
            if actions.ndim != 3 or actions.shape[1:] != (horizon, ACTION_DIM):
                raise ValueError(f"actions must be (E*S, {horizon}, 7) with E = {e}; "
                                 f"got {tuple(actions.shape)}")
            rows = self._checked_actions(actions, e)
            z_last_step = self._imagine(past, z_last, s_last, rows)[:, -1]  # (E*S, N, D)
            return self.energy(z_last_step, goal, metric, view_weights).to(actions.device)  # (E*S,)

        return cost
