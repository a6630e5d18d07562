"""The documents' commands stay in step with the code, without running them: every `ami-robot ...`
command in the README, docs/results.md and the model card composes with Hydra; the policies,
planners and tasks it names exist and take the settings it gives; every script it names is there."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.utils import get_class
from omegaconf import OmegaConf

from ami_robot.apps import COMMANDS
from ami_robot.envs import TASK_SPECS
from ami_robot.planners import make_config
from ami_robot.policies import RetrievalConfig, RetrievalMPC

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "docs/results.md", "checkpoints/README.md", "docs/edge.md", "docs/report.md",
             "docs/rl.md"]


def commands(text: str) -> list[str]:
    """`ami-robot ...` in inline code, and the lines of bash blocks that start with it."""
    found = [m.group(1) for m in re.finditer(r"`(ami-robot\s[^`]*)`", text)]
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        found += [line.split(" #")[0].strip() for line in block.splitlines() if line.startswith("ami-robot ")]
    return found


def first_of_sweeps(arg: str) -> str:
    """A multirun's `key=a,b` as its first value (commas inside [...] are a list, not a sweep)."""
    key, _, value = arg.partition("=")
    depth, cut = 0, len(value)
    for i, ch in enumerate(value):
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            cut = i
            break
    return f"{key}={value[:cut]}"


CASES = [(doc, cmd) for doc in DOCUMENTS for cmd in commands((ROOT / doc).read_text())]


def test_the_documents_show_commands() -> None:
    readme = [cmd for doc, cmd in CASES if doc == "README.md"]
    assert len(readme) >= 10 and any("policy=retrieval" in c for c in readme)
    assert sum(1 for _ in (ROOT / "README.md").open()) <= 180  # a user's document, not a lab notebook


@pytest.mark.parametrize(("doc", "command"), CASES, ids=[f"{d}: {c[:70]}" for d, c in CASES])
def test_command_composes(doc: str, command: str) -> None:
    words = shlex.split(command)[1:]
    name, args = words[0], words[1:]
    assert name in COMMANDS, f"{doc}: `{command}`: no command {name!r}; there are {sorted(COMMANDS)}"
    importlib.import_module(f"ami_robot.apps.{COMMANDS[name][0]}")  # as the CLI does: it may add schemas
    multirun = any(a in ("--multirun", "-m") for a in args)
    overrides = [a for a in args if not a.startswith("-") and a not in ("job", "hydra")]
    if multirun:
        overrides = [first_of_sweeps(a) for a in overrides]
    with initialize_config_module(config_module="ami_robot.conf", version_base=None):
        cfg = compose(COMMANDS[name][2], overrides=overrides,
                      return_hydra_config=any(o.startswith("hydra") for o in overrides))
    for task in cfg.get("tasks", []) + ([cfg.task] if "task" in cfg else []):
        assert task in TASK_SPECS, f"{doc}: `{command}`: no task {task!r}"
    if "planner" in cfg:
        make_config(**OmegaConf.to_container(cfg.planner, resolve=True))
    policies = dict(cfg.policies) if "policies" in cfg else {}
    if "policy" in cfg:
        policies["policy"] = cfg.policy
    for node in policies.values():
        settings = OmegaConf.to_container(node, resolve=True)
        target = settings.pop("_target_", None)
        if target is None or not target.startswith("ami_robot."):
            continue  # a user's own policy, or an empty node filled by a defaults entry
        cls = get_class(target)
        settings.pop("planner", None)
        if cls is RetrievalMPC:  # its settings are RetrievalConfig's fields (checked as built)
            fields = {k: v for k, v in settings.items() if k not in ("memory", "locator")}
            RetrievalConfig(**fields)
        else:
            unknown = set(settings) - set(inspect.signature(cls).parameters)
            assert not unknown, f"{doc}: `{command}`: {target} takes no {sorted(unknown)}"


def test_named_scripts_exist() -> None:
    for doc in DOCUMENTS:
        for script in re.findall(r"python (benchmarks/[\w/]+\.py)", (ROOT / doc).read_text()):
            assert (ROOT / script).is_file(), f"{doc} names {script}, which is not there"


def test_retrieval_settings_documented_in_the_config_are_fields() -> None:
    with initialize_config_module(config_module="ami_robot.conf", version_base=None):
        cfg = compose("eval", overrides=["policy=retrieval"])
    fields = {f.name for f in dataclasses.fields(RetrievalConfig)} | {"_target_", "memory", "locator"}
    assert set(cfg.policy) <= fields


def test_the_python_example_runs() -> None:
    """The README's Python example, two steps instead of an episode: its names are the library's."""
    example = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert "range(30)" in example
    exec(compile(example.replace("range(30)", "range(2)"), "README.md", "exec"), {})
