"""Every bad input of tests/apps/bad_inputs.py is refused with a clear error, never a traceback,
and nothing is run; every command refuses an unknown key and wrong-typed settings.

The commands run in this process (`ami_robot.apps.main`, as the console script calls it): a
refused input stops before any model or environment is built, so each row costs well under a
second, where a subprocess would pay torch's import every time.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import typing
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from ami_robot.apps import COMMANDS, main
from ami_robot.apps.schemas import ARGS, list_fields
from ami_robot.data import Episode, ShardWriter
from ami_robot.models import VisionTransformer
from ami_robot.weights import save_model
from ami_robot.world_model import WorldModel
from tests.apps.bad_inputs import BAD_INPUTS

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints"
FORBIDDEN = ("Traceback", "KeyError", "unknown task 'R'")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad_inputs")
    image = root / "goal.png"
    imageio.imwrite(image, np.zeros((32, 32, 3), np.uint8))
    folder = root / "folder"
    folder.mkdir()
    text_pt = root / "weights.pt"
    text_pt.write_text("these are not weights\n")
    dataset = root / "dataset"  # one two-frame episode: a folder that train-predictor takes as data
    with ShardWriter(dataset, {"kind": "bad_inputs"}, episodes_per_shard=1) as writer:
        writer.add(Episode(id=0, frames=np.zeros((2, 64, 64, 3), np.uint8),
                           states=np.zeros((2, 7), np.float32),
                           actions=np.zeros((1, 7), np.float32), meta={"task": "Reach", "seed": 0}))

    shipped = WorldModel.from_checkpoint(SHIPPED)
    per_file = root / "per_file"  # the shipped model in the per-file layout, which model.path= still takes
    save_model(shipped.encoder, per_file / "encoder.safetensors")
    save_model(shipped.predictor, per_file / "predictor.safetensors")

    def copy_of_shipped(name: str) -> Path:
        return Path(shutil.copytree(per_file, root / name))

    truncated = copy_of_shipped("truncated")
    enc = truncated / "encoder.safetensors"
    enc.write_bytes(enc.read_bytes()[: enc.stat().st_size // 2])
    truncated_file = root / "hf" / "model.safetensors"
    truncated_file.parent.mkdir()
    truncated_file.write_bytes(enc.read_bytes())
    bad_card = copy_of_shipped("bad_card")
    (bad_card / "encoder.json").write_text('{"format": "ami-robot/v1", "kind": "enc')
    nan = copy_of_shipped("nan")
    encoder = VisionTransformer(shipped.encoder.config)
    with torch.no_grad():
        encoder.blocks[0].attn.qkv.weight[0, 0] = float("nan")
    save_model(encoder, nan / "encoder.safetensors")  # its card is valid: the sha256 is the file's
    return {"image": str(image), "dir": str(folder), "text_pt": str(text_pt), "dataset": str(dataset),
            "shipped": str(SHIPPED), "truncated": str(truncated),
            "truncated_file": str(truncated_file), "bad_card": str(bad_card), "nan": str(nan)}


def run(command: str, overrides: list[str], out: Path, capsys: pytest.CaptureFixture) -> tuple[object, str]:
    """(exit code, stderr) of `ami-robot command overrides...`, run in this process."""
    argv = sys.argv
    capsys.readouterr()
    try:
        main([command, *overrides, f"hydra.run.dir={out}"])
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("command", "overrides", "words"), BAD_INPUTS,
                         ids=[f"{c} {' '.join(o)}" for c, o, _ in BAD_INPUTS])
def test_bad_input_is_refused_clearly(command: str, overrides: list[str], words: list[str],
                                      files: dict[str, str], tmp_path: Path, capsys) -> None:
    overrides = [o.format(**files) for o in overrides]
    code, err = run(command, overrides, tmp_path / "run", capsys)
    assert code not in (0, None), f"ami-robot {command} {' '.join(overrides)} was accepted"
    for word in words:
        assert word.format(**files) in err, f"{word.format(**files)!r} not in: {err}"
    assert not any(f in err for f in FORBIDDEN), err
    assert not (tmp_path / "run" / "episodes.jsonl").exists()  # refused before anything ran


def _typed_settings(command: str) -> list[tuple[str, str, str]]:
    """(field, bad value, word) for every setting of the command whose type can be wrong."""
    cls = ARGS[command]
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        options = [o for o in typing.get_args(hint) if o is not type(None)] or [hint]
        if f.name in list_fields(cls):
            rows.append((f.name, "word", "brackets"))
        elif options[0] is bool:
            rows.append((f.name, "maybe", "true or false"))
        elif options[0] in (int, float):
            rows.append((f.name, "abc", f.name))
    return rows


GENERIC = [(c, *row) for c in COMMANDS for row in [("no_such_key", "1", "unknown key")] + _typed_settings(c)]


def test_every_command_declares_its_settings() -> None:
    assert sorted(ARGS) == sorted(COMMANDS), "add the new command's settings to ami_robot/apps/schemas.py"


@pytest.mark.parametrize(("command", "field", "value", "word"), GENERIC,
                         ids=[f"{c} {f}={v}" for c, f, v, _ in GENERIC])
def test_every_command_refuses_unknown_keys_and_wrong_types(command: str, field: str, value: str, word: str,
                                                            files: dict[str, str], tmp_path: Path,
                                                            capsys) -> None:
    prefix = "+" if field == "no_such_key" else ""
    needed = {"plan": [f"goal={files['image']}"], "train-predictor": [f"encoder={files['text_pt']}"]}
    code, err = run(command, [*needed.get(command, []), f"{prefix}{field}={value}"], tmp_path / "run", capsys)
    assert code not in (0, None), f"ami-robot {command} {field}={value} was accepted"
    assert field in err and word in err, err
    assert not any(f in err for f in FORBIDDEN), err
