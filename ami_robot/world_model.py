"""WorldModel: frames -> latents (encode), latents + actions -> imagined latents (rollout),
latents -> distance to a goal (energy), and the batched, KV-cached cost planners call.

Preprocessing and normalisation are as released: ImageNet mean/std on [0, 1], centre square
crop, bilinear resize to the encoder's crop size, one image repeated into one tubelet; encoder
outputs, predictions and goals are layer-normalised over the feature dim without affine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import ModelCard, ModelHubMixin

from ami_robot import hub
from ami_robot.models import (
    ENCODER_CONFIGS,
    PREDICTOR_CONFIGS,
    ACPredictor,
    EncoderConfig,
    KVCache,
    PredictorConfig,
    VisionTransformer,
    actions_between,
    next_state,
    split_views,
)
from ami_robot.planners import ACTION_DIM
from ami_robot.weights import load_encoder, load_ours, load_predictor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
METRICS = ("l1", "l2", "cosine")
PLAN_CHUNK_ROWS = 128  # WorldModel.plan_chunk_rows, measured in docs/performance.md


def _named(config: EncoderConfig | PredictorConfig | str, table: dict) -> EncoderConfig | PredictorConfig:
    if isinstance(config, str):
        if config not in table:
            raise ValueError(f"unknown config {config!r}; choose from {sorted(table)}")
        return table[config]
    return config


def normalise(z: torch.Tensor) -> torch.Tensor:
    """Layer norm without affine over the feature dim (the last)."""
    return F.layer_norm(z, (z.shape[-1],))


def _widened(z: torch.Tensor) -> torch.Tensor:
    """Latents leaving the model are at least float32: a bfloat16 model computes in bfloat16, but
    callers (planners, memory, locator) get float32 to mix with their own tensors."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def check_view_weights(view_weights: Sequence[float], tokens: int) -> torch.Tensor:
    """Per-view energy weights -> a float32 tensor (V,) summing to 1; refuses what cannot be one."""
    w = torch.as_tensor([float(x) for x in view_weights], dtype=torch.float32)
    if w.ndim != 1 or len(w) == 0 or tokens % len(w) or (w < 0).any() or not torch.isfinite(w).all() \
            or w.sum() <= 0:
        raise ValueError(f"view_weights must be one non-negative weight per camera view, not all zero, "
                         f"dividing the {tokens} tokens evenly; got {list(view_weights)}")
    return w / w.sum()


def pool_features(z: torch.Tensor, grid: tuple[int, int], pooled: int = 4) -> torch.Tensor:
    """Average patch features onto a coarser (pooled x pooled) grid and flatten: (B, N, D) -> (B, P*P*D).

    Pooling keeps where things are (a mean over all patches would not) while making the features
    small: the linear probe's input (ami_robot.train.probe), the retrieval memory's keys.
    """
    b, n, d = z.shape
    h, w = grid
    if n != h * w:
        raise ValueError(f"features have {n} tokens, the grid {grid} has {h * w}")
    x = z.transpose(1, 2).reshape(b, d, h, w)  # (B, D, H, W)
    x = F.adaptive_avg_pool2d(x, min(pooled, h))  # (B, D, P, P)
    return x.flatten(1)


def preprocess_images(frames: np.ndarray | torch.Tensor, size: int, views: int = 1,
                      mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) -> normalised float32 images (B*V, 3, size, size) on mean's device.

    A model of V > 1 views cuts each frame into its V stacked squares first. Then: centre square
    crop, bilinear resize (antialiased when shrinking), ImageNet mean/std (1, 3, 1, 1) by default.
    Shared by WorldModel and the onnxruntime backend (ami_robot.edge), so both see the same pixels.
    """
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) if mean is None else mean
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) if std is None else std
    x = torch.as_tensor(frames)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (B, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    x = split_views(x, views)  # (B*V, S', S', 3)
    x = x.to(mean.device).permute(0, 3, 1, 2).float() / 255.0  # (B*V, 3, H, W) in [0, 1]
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, :, top:top + side, left:left + side]  # (B, 3, side, side)
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
    return (x - mean) / std


class WorldModel(nn.Module, ModelHubMixin, model_card_template=hub.CARD_TEMPLATE, **hub.LIBRARY):
    """A frozen V-JEPA 2 encoder and V-JEPA 2-AC predictor, for planning.

    save_pretrained / from_pretrained come from huggingface_hub's ModelHubMixin (the folder layout
    is in ami_robot/hub.py); from_checkpoint also reads our older per-file folders."""

    def __init__(self, encoder: VisionTransformer, predictor: ACPredictor, *,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        e, p = encoder.config, predictor.config
        if p.input_dim != e.dim:
            raise ValueError(f"predictor input_dim {p.input_dim} != encoder dim {e.dim}")
        if (p.grid, p.tubelet_size) != (e.grid, e.tubelet_size):
            raise ValueError(f"predictor grid {p.grid} / tubelet {p.tubelet_size} != encoder's {e.grid} / "
                             f"{e.tubelet_size} at its img_size {e.img_size}")
        if p.action_dim != ACTION_DIM or p.use_extrinsics:
            raise ValueError("the world model drives 7-D actions and states without extrinsics")
        self.encoder = encoder.eval().requires_grad_(False)
        self.predictor = predictor.eval().requires_grad_(False)
        # The folder it was loaded from: artefacts made from this model (memory, locator) live there.
        self.checkpoint_dir: Path | None = None
        self._compiled_step: Callable | None = None  # compile(): the predictor's forward for planning
        # A planning cost runs the predictor on at most this many candidate rows at a time: whole
        # episodes, or one episode's candidates in chunks where it has more. On 2 CPU cores 8
        # episodes x 128 candidates in one call ran 1.8x slower than one by one, and the paper's
        # 800 candidates 1.5x slower than in chunks of 128 (activations out of cache;
        # docs/performance.md). None: all in one call.
        self.plan_chunk_rows: int | None = PLAN_CHUNK_ROWS
        self.to(device=device, dtype=dtype)
        mean, std = torch.tensor(IMAGENET_MEAN, device=device), torch.tensor(IMAGENET_STD, device=device)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)  # preprocessing stays fp32
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def random(cls, encoder_config: EncoderConfig | str = "tiny",
               predictor_config: PredictorConfig | str = "tiny", image_size: int | None = None,
               seed: int = 0, *, device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> WorldModel:
        """Random weights from configs (or config names), reproducibly from `seed`, for tests and benchmarks.

        image_size overrides both configs' img_size (the predictor's grid follows the encoder's).
        """
        enc = _named(encoder_config, ENCODER_CONFIGS)
        pred = _named(predictor_config, PREDICTOR_CONFIGS)
        if image_size is not None:
            enc = dataclasses.replace(enc, img_size=image_size)
            pred = dataclasses.replace(pred, img_size=image_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder, predictor = VisionTransformer(enc), ACPredictor(pred)
        return cls(encoder, predictor, device=device, dtype=dtype)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: torch.device | str | None = None,
                        dtype: torch.dtype = torch.float32) -> WorldModel:
        """Either of our layouts: a hub folder (`from_pretrained`), or a folder with encoder.safetensors
        and predictor.safetensors, each with its JSON model card (sha256 verified); a path to a file
        inside the folder works too."""
        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        if hub.is_hub_folder(folder):
            return cls.from_pretrained(folder, device=device, dtype=dtype)
        encoder, _ = load_ours(folder / "encoder.safetensors", "encoder")
        predictor, _ = load_ours(folder / "predictor.safetensors", "predictor")
        model = cls(encoder, predictor, device=device, dtype=dtype)
        model.checkpoint_dir = folder
        return model

    # ------------------------------------------------------------------ the hub layout (ModelHubMixin)

    def save_pretrained(self, folder: str | Path, *, card: hub.Card | None = None) -> Path:  # type: ignore[override]
        """Write config.json, model.safetensors and the README.md model card (from `card`) into `folder`
        through ModelHubMixin.save_pretrained, then read them back checked. Other files there (memory,
        locator) stay; a README.md already there is replaced, as it describes other weights."""
        folder, card = Path(folder), card or hub.Card()
        weights = hub.weights_bytes(hub.tensors_of(self))
        config = hub.hub_config(self.encoder.config, self.predictor.config, weights, card)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / hub.CARD_NAME).unlink(missing_ok=True)  # the mixin keeps a card that is there
        super().save_pretrained(folder, config=config, model_card_kwargs={"card": card})
        hub.check_folder(folder)  # the file written is the one config.json describes
        return folder

    def _save_pretrained(self, save_directory: Path) -> None:
        """model.safetensors (the mixin writes config.json and README.md), atomically."""
        tmp = save_directory / (hub.WEIGHTS_NAME + ".tmp")
        tmp.write_bytes(hub.weights_bytes(hub.tensors_of(self)))
        tmp.replace(save_directory / hub.WEIGHTS_NAME)

    def generate_model_card(self, card: hub.Card | None = None) -> ModelCard:  # type: ignore[override]
        """The README.md: the mixin's front matter (library, license, tags) plus `card`'s figures
        (model-index, each with its command), above `card`'s text."""
        card = card or hub.Card()
        model_card = super().generate_model_card(text=card.text.strip())
        model_card.data.model_name = card.name
        model_card.data.eval_results = card.eval_results()
        return model_card

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device: torch.device | str | None = None,  # type: ignore[override]
                        dtype: torch.dtype = torch.float32) -> WorldModel:
        """A hub folder (config.json, model.safetensors, README.md) through ModelHubMixin.from_pretrained,
        sha256 and every tensor checked; only a local folder, never a Hub repository id (no network)."""
        hub.check_folder(folder)  # before the mixin: it would read a bad config.json unchecked
        return super().from_pretrained(Path(folder), local_files_only=True, device=device, dtype=dtype)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, device: torch.device | str | None = None,
                         dtype: torch.dtype = torch.float32, **hub_args: object) -> WorldModel:
        """Called by the mixin's from_pretrained with the folder as `model_id`."""
        parts = hub.read_parts(model_id)
        model = cls(parts["encoder"], parts["predictor"], device=device, dtype=dtype)
        model.checkpoint_dir = Path(model_id)
        return model

    @classmethod
    def from_reference(cls, path: str | Path, encoder_config: EncoderConfig | str = "vit_giant",
                       predictor_config: PredictorConfig | str = "vjepa2_ac_vit_giant", *,
                       device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float32) -> WorldModel:
        """The released V-JEPA 2-AC file (`vjepa2-ac-vitg.pt`: `encoder` and `predictor` entries)."""
        encoder = load_encoder(path, encoder_config, entry="encoder")
        predictor = load_predictor(path, predictor_config, entry="predictor")
        return cls(encoder, predictor, device=device, dtype=dtype)

    @property
    def image_size(self) -> int:
        return self.encoder.config.img_size

    @property
    def views(self) -> int:
        """Camera views per frame: a frame stacks them top to bottom (ami_robot.envs.stack_views)."""
        return self.predictor.config.views

    @property
    def _dtype(self) -> torch.dtype:
        return self.predictor.predictor_embed.weight.dtype

    @property
    def _device(self) -> torch.device:
        return self.predictor.predictor_embed.weight.device

    # ------------------------------------------------------------------ encode

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, H, W, 3) -> normalised clips (B*V, 3, tubelet, S, S), S = image_size:
        `preprocess_images`, each image repeated over one tubelet."""
        x = preprocess_images(frames, self.image_size, self.views, self.mean, self.std)  # (B*V, 3, S, S)
        clip = x[:, :, None].expand(-1, -1, self.encoder.config.tubelet_size, -1, -1)  # (B, 3, t, S, S)
        return clip.to(self._dtype)

    @torch.no_grad()
    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, H, W, 3) -> normalised latents z (B, N, D), N = views x patches per view;
        float32 (or the model's dtype if wider)."""
        z = normalise(self.encoder(self.preprocess(frames)))  # (B*V, n, D)
        return _widened(z.reshape(-1, self.views * z.shape[1], z.shape[2]))  # (B, V*n, D), view-major

    # ------------------------------------------------------------------ rollout

    def _context(self, z_context: torch.Tensor, state_context: torch.Tensor,
                 action_context: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Checked and cast context, and its C - 1 actions (derived from the states if not given)."""
        if z_context.ndim != 4 or state_context.shape != (*z_context.shape[:2], ACTION_DIM):
            raise ValueError(f"expected z_context (B, C, N, D) and state_context (B, C, 7); got "
                             f"{tuple(z_context.shape)} and {tuple(state_context.shape)}")
        z = z_context.to(self._device, self._dtype)
        s = state_context.to(self._device, self._dtype)
        if action_context is None:
            action_context = actions_between(s)  # (B, C-1, 7): the actions that linked the context frames
        elif action_context.shape != (s.shape[0], s.shape[1] - 1, ACTION_DIM):
            raise ValueError(f"action_context must be (B, C-1, 7), got {tuple(action_context.shape)}")
        return z, s, action_context.to(self._device, self._dtype)

    def compile_planning(self) -> WorldModel:
        """Plan with the predictor compiled by torch.compile (inductor, shapes dynamic: CEM's and
        iCEM's populations vary), its weights frozen into the graph as constants. Measured on 2 CPU
        cores (docs/performance.md): 1.7-1.8x per float32 planning step after a one-time 20-30 s
        compile, the same plans; no gain in bfloat16. Only the imagined steps of planning costs
        without gradients use it, so the weights must not change after this call (planning never
        changes them); where inductor cannot build (no C++ compiler, say), torch falls back to
        running the predictor as it is, with a warning."""
        import torch._dynamo
        import torch._inductor.config

        torch._dynamo.config.suppress_errors = True  # a failed compile runs eagerly instead of raising
        # each kind of call (with or without a context cache, one row or many, horizon step 1 or
        # later) is its own graph; past torch's default of 8 the rest would silently run eagerly
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 32)
        compiled = torch.compile(self.predictor.forward, dynamic=True)

        def step(*args: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            # freezing: the weights become constants, so inductor folds what depends on them alone
            # (1.3x -> 1.7x on the two-view model in float32). It must be set while inductor
            # compiles, which happens at a call (the first, and any recompile); torch.compile's own
            # options={"freezing": True} did not take effect in torch 2.13 (measured: 1.3x).
            with torch._inductor.config.patch(freezing=True):
                return compiled(*args, **kwargs)

        self._compiled_step = step
        return self

    def _prefill(self, z: torch.Tensor, s: torch.Tensor, a: torch.Tensor) -> KVCache | None:
        """Keys and values of context steps 0..C-2 (all known). The last context step's tokens
        attend to its action token, the first planned action, so they are computed per candidate."""
        if z.shape[1] == 1:
            return None
        cache = KVCache.empty(self.predictor.config.depth)
        with torch.no_grad():
            self.predictor(z[:, :-1], a, s[:, :-1], cache=cache)
        return cache

    def _imagine(self, prefix: KVCache | None, z_last: torch.Tensor, s_last: torch.Tensor,
                 actions: torch.Tensor) -> torch.Tensor:
        """Autoregressive steps from the last context frame z_last (G, N, D) and state s_last (G, 7)
        under actions (B, T, 7), B = G * S episode-major -> predicted latents (B, T, N, D)."""
        b, steps = actions.shape[:2]
        cache = KVCache.empty(self.predictor.config.depth, prefix=prefix)
        z = z_last[:, None]  # (G, 1, N, D): repeated to the B rows inside the predictor
        s = s_last.repeat_interleave(b // s_last.shape[0], dim=0)  # (B, 7)
        compiled = self._compiled_step is not None and not torch.is_grad_enabled()
        step = self._compiled_step if compiled else self.predictor
        out = []
        for t in range(steps):
            # contiguous: a strided slice would cost the compiled step a recompile per horizon
            z = normalise(step(z, actions[:, t:t + 1].contiguous(), s[:, None], cache=cache))  # (B, 1, N, D)
            out.append(z)
            s = next_state(s, actions[:, t])  # the imagined robot state of the next step
        return torch.cat(out, dim=1)  # (B, T, N, D)

    def _rollout_uncached(self, z: torch.Tensor, s: torch.Tensor, a: torch.Tensor,
                          actions: torch.Tensor) -> torch.Tensor:
        """The reference algorithm: re-run the whole sequence for every imagined step."""
        rep = actions.shape[0] // z.shape[0]
        z, s, a = (x.repeat_interleave(rep, dim=0) for x in (z, s, a))
        out = []
        for t in range(actions.shape[1]):
            a = torch.cat([a, actions[:, t:t + 1]], dim=1)  # (B, C+t, 7)
            pred = normalise(self.predictor(z, a, s)[:, -1:])  # (B, 1, N, D)
            out.append(pred)
            z = torch.cat([z, pred], dim=1)
            s = torch.cat([s, next_state(s[:, -1:], actions[:, t:t + 1])], dim=1)
        return torch.cat(out, dim=1)  # (B, T, N, D)

    def rollout(self, z_context: torch.Tensor, state_context: torch.Tensor, actions: torch.Tensor,
                action_context: torch.Tensor | None = None, use_cache: bool = True) -> torch.Tensor:
        """Imagine T steps: z_context (G, C, N, D), state_context (G, C, 7), actions (B, T, 7)
        -> predicted latents (B, T, N, D), normalised; output t is the frame after actions[:, t].

        B = G * S: each context row serves S consecutive action rows (G = B is the plain case).
        actions[:, 0] is taken at the last context frame; action_context (G, C-1, 7), the actions
        between context frames, is derived from the states when not given. Predictions and
        propagated states (xyz + delta, R_delta R, gripper clipped) are fed back step by step.
        Float32 out (or the model's dtype if wider), as encode's.
        """
        z, s, a = self._context(z_context, state_context, action_context)
        actions = actions.to(self._device, self._dtype)
        if actions.ndim != 3 or actions.shape[-1] != ACTION_DIM or actions.shape[0] % z.shape[0]:
            raise ValueError(f"actions must be (B, T, 7) with B a multiple of {z.shape[0]}; "
                             f"got {tuple(actions.shape)}")
        if not use_cache:
            return _widened(self._rollout_uncached(z, s, a, actions))
        return _widened(self._imagine(self._prefill(z, s, a), z[:, -1], s[:, -1], actions))

    # ------------------------------------------------------------------ energy and planning

    @staticmethod
    def energy(z: torch.Tensor, z_goal: torch.Tensor, metric: str = "l1",
               view_weights: Sequence[float] | None = None) -> torch.Tensor:
        """Distance of latents z (B, N, D) to goals z_goal (B, 1 or G, N, D) -> (B,), float32, >= 0.

        l1: mean absolute difference (as released); l2: mean squared difference; cosine: mean over
        tokens of 1 - cosine similarity. G goals serve B // G consecutive rows each. view_weights
        (one per view; tokens are view-major) weigh each view's mean: the released energy weighs
        every token alike, so a view of many tokens that change little counts as much as one where
        the task shows; None (or equal weights) is the released energy.
        """
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        b, g = z.shape[0], z_goal.shape[0]
        if z.ndim != 3 or z_goal.shape[1:] != z.shape[1:] or b % g:
            raise ValueError(f"z (B, N, D) and z_goal (B, 1 or G, N, D) disagree: {tuple(z.shape)}, "
                             f"{tuple(z_goal.shape)}")
        z = z.float().view(g, b // g, *z.shape[1:])  # (G, S, N, D)
        goal = z_goal.float().to(z.device)[:, None]  # (G, 1, N, D)
        if metric == "l1":
            d = (z - goal).abs().mean(dim=-1)
        elif metric == "l2":
            d = (z - goal).square().mean(dim=-1)
        else:
            d = 1.0 - F.cosine_similarity(z, goal, dim=-1)
        if view_weights is None:
            e = d.mean(dim=-1)  # (G, S)
        else:
            w = check_view_weights(view_weights, z.shape[2])
            e = d.view(*d.shape[:2], len(w), -1).mean(dim=-1) @ w.to(d.device)  # (G, S, V) @ (V,)
        return (e.clamp_min(0.0) if metric == "cosine" else e).reshape(b)  # (B,)

    def planning_cost(self, z_context: torch.Tensor, state_context: torch.Tensor, z_goal: torch.Tensor,
                      horizon: int, metric: str = "l1",
                      action_context: torch.Tensor | None = None,
                      view_weights: Sequence[float] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """A planner's cost: actions (E*S, H, 7) -> energy of the LAST imagined step vs the goal (E*S,).

        z_context (E, C, N, D), state_context (E, C, 7), z_goal (E or 1, N, D): E episodes planned
        at once, candidate rows episode-major (rows e*S .. e*S+S-1 belong to episode e). The
        context steps' keys and values are computed once here and shared, uncopied, by every
        candidate; each call computes only the candidates' own tokens. Differentiable in the
        actions when they require grad (the model's weights are frozen). view_weights: `energy`'s.
        """
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        z, s, a = self._context(z_context, state_context, action_context)
        e = z.shape[0]
        if view_weights is not None and len(view_weights) != self.views:
            raise ValueError(f"view_weights: one weight per camera view of this model ({self.views}); "
                             f"got {list(view_weights)}")
        goal = z_goal.to(self._device, self._dtype)
        if goal.shape[0] not in (1, e) or goal.shape[1:] != z.shape[2:]:
            raise ValueError(f"z_goal must be (1 or E, N, D) = (1 or {e}, {z.shape[2]}, {z.shape[3]}); "
                             f"got {tuple(z_goal.shape)}")
        goal = goal.expand(e, -1, -1)  # (E, N, D)
        prefix = self._prefill(z, s, a)
        z_last, s_last = z[:, -1], s[:, -1]

        def cost(actions: torch.Tensor) -> torch.Tensor:
            if actions.ndim != 3 or actions.shape[1:] != (horizon, ACTION_DIM) or actions.shape[0] % e:
                raise ValueError(f"actions must be (E*S, {horizon}, 7) with E = {e}; "
                                 f"got {tuple(actions.shape)}")
            actions = actions.to(self._device, self._dtype)
            rows = actions.shape[0] // e
            limit = self.plan_chunk_rows or e * rows
            group = max(1, limit // rows)  # whole episodes a call; one, in row chunks, if it has more
            chunk = min(group * rows, limit)
            energies = []
            for g0 in range(0, e, group):  # see plan_chunk_rows
                g1 = min(e, g0 + group)
                part = prefix if prefix is None or group >= e else prefix.episodes(g0, g1)
                for r0 in range(g0 * rows, g1 * rows, chunk):
                    z_last_step = self._imagine(part, z_last[g0:g1], s_last[g0:g1],
                                                actions[r0:min(r0 + chunk, g1 * rows)])[:, -1]  # (rows, N, D)
                    energies.append(self.energy(z_last_step, goal[g0:g1], metric, view_weights))
            return torch.cat(energies)  # (E*S,)

        return cost
