"""The package installs as DESIGN.md lays it out, and its arrows point one way."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# DESIGN.md: "no envs -> torch, no planners -> models, no models -> envs".
FORBIDDEN_IMPORTS = {
    "envs": ("torch", "ami_robot"),  # envs may import ami_robot.envs itself (checked below)
    "planners": ("ami_robot", "mujoco", "gymnasium"),
    "ami_robot/models": ("ami_robot.envs", "ami_robot.planners", "mujoco", "gymnasium"),
}
ALLOWED_SELF = {"envs": "ami_robot.envs", "planners": "ami_robot.planners", "ami_robot/models": ""}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder", sorted(FORBIDDEN_IMPORTS))
def test_arrows_point_one_way(folder: str) -> None:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in _imports(path):
            own = ALLOWED_SELF[folder]
            if own and (name == own or name.startswith(own + ".")):
                continue
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS[folder]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


MODULES = ["ami_robot", "ami_robot.envs", "ami_robot.planners", "ami_robot.checkpoints"]


@pytest.mark.parametrize("module", MODULES)
def test_imports_from_any_directory(module: str, tmp_path: Path) -> None:
    # Run from an unrelated directory so the repo root is not on sys.path.
    out = subprocess.run(
        [sys.executable, "-c", f"import {module}; print({module}.__name__)"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == module


def test_version() -> None:
    assert importlib.import_module("ami_robot").__version__
