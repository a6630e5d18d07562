"""The house's floors, read from the source with `ast`: no import runs up the house, none hides in a function.

A module may import ami_robot modules on its own floor or below, never above. Read bottom to top:
the standalone packages; the networks; checkpoint formats; the world model; the planning loop; the
policies; data and training (which build the policies' memory and locator); the evaluation
protocol's runner and bookkeeping; the command line. A new module fails here until it is given a
floor.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FLOORS: list[tuple[str, ...]] = [
    ("ami_robot.envs", "ami_robot.planners", "ami_robot.checkpoints"),  # ours imports nothing of ours
    ("ami_robot.models",),  # torch only
    ("ami_robot.weights", "ami_robot.hub"),  # checkpoint formats; hub: the one-folder model layout
    ("ami_robot.world_model", "ami_robot.edge"),  # edge: the same networks under onnxruntime
    ("ami_robot.agent", "ami_robot.sim_model"),  # the receding-horizon loop and its cost models
    ("ami_robot.policies",),
    ("ami_robot.data", "ami_robot.train"),
    ("ami_robot.episodes", "ami_robot.evaluation", "ami_robot.runlock",
     "ami_robot.video", "ami_robot.report"),  # report.html and the episode videos it shows
    ("ami_robot.apps", "ami_robot.conf", "ami_robot"),
]
# Where a folder installs (pyproject.toml's package-dir).
FOLDERS = {"ami_robot": "ami_robot", "envs": "ami_robot.envs", "planners": "ami_robot.planners",
           "checkpoints": "ami_robot.checkpoints"}
# `ami-robot --help` stays instant: the entry point imports its app (and Hydra) only when run.
DEFERRED_ON_PURPOSE = {"ami_robot.apps"}


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def floor(module: str) -> int:
    """The floor of a module: that of the longest floor name it lies under."""
    best, level = "", None
    for i, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, level = name, i
    assert level is not None, f"{module} has no floor: add it to FLOORS in tests/test_house.py"
    return level


def ours(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> list[str]:
    """The ami_robot modules an import statement names (relative ones resolved)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        # `from ami_robot import runlock` names a module; `from x import Class` names x
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return [n for n in names if n == "ami_robot" or n.startswith("ami_robot.")]


def imports(module: str) -> list[tuple[str, bool]]:
    """(imported ami_robot module, whether the import sits inside a function)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.extend((name, inside) for name in ours(module, child, path.name == "__init__.py"))
            visit(child, inside)

    visit(tree, False)
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_the_house(module: str) -> None:
    here = floor(module)
    up = [f"{name} (floor {floor(name)})" for name, _ in imports(module) if floor(name) > here]
    assert not up, f"{module} (floor {here}) imports from above: {', '.join(up)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_hides_in_a_function(module: str) -> None:
    hidden = sorted({name for name, inside in imports(module) if inside})
    if module in DEFERRED_ON_PURPOSE:
        return
    assert not hidden, f"{module} imports {', '.join(hidden)} inside a function: import it at the top"


def test_the_floors_name_real_modules() -> None:
    for names in FLOORS:
        for name in names:
            assert name in MODULES, f"FLOORS names {name}, which is no module"
    policies = [m for m in MODULES if m.startswith("ami_robot.policies")]
    assert {"ami_robot.policies.latent", "ami_robot.policies.baselines",
            "ami_robot.policies.retrieval.policy"} <= set(policies)
    assert not any(name.startswith("ami_robot.apps") for m in policies for name, _ in imports(m))
