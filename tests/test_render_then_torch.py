"""Rendering an env and then using torch's lazily imported parts must not kill the process.

With the default-index torch (a CUDA build that ships triton) on a machine whose OpenGL is Mesa's,
Mesa's libLLVM entered the global symbol scope (at the first EGL context; at `import mujoco` with
OSMesa), and triton's LLVM, loaded later by `torch.optim.Adam` (torch._dynamo -> triton), bound
to it and segfaulted (exit 139). envs/gl_setup.py preloads triton's library when ami_robot.envs
is imported, before mujoco. Each case runs in a fresh interpreter because the crash is the
process's death, and the order of loading is the point. .ci/run also runs this file in a second
venv with the default-index torch, where triton is installed.
"""

import ctypes.util
import os
import subprocess
import sys
import textwrap

import pytest

RENDER = """
import sys
import gymnasium as gym
import ami_robot.envs
env = gym.make("ami_robot/Reach-v0", image_size=32)
env.reset(seed=0)
assert "torch" not in sys.modules, "rendering an env imported torch"
"""

AFTER_RENDER = {
    "adam": """
import torch
torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))]).step()
""",
    "gradient_planner": """
import torch
from ami_robot.planners import GradientConfig, gradient_descent
target = torch.tensor([0.02, -0.01, 0.03, 0.0, 0.0, 0.0, 0.0])
plan = gradient_descent(lambda a: ((a - target) ** 2).sum(dim=(-2, -1)),
                        GradientConfig(starts=4, iterations=5), generator=torch.Generator().manual_seed(0))
assert plan.shape == (1, 7), plan.shape
""",
    "dynamo": """
import torch._dynamo
""",
    "subgoal_maker": """
import torch
from ami_robot.models.subgoals import SubgoalConfig, SubgoalMaker
config = SubgoalConfig(input_dim=8, grid=2, views=1, moments=2, dim=12, depth=1, heads=2, mlp_dim=16)
maker = SubgoalMaker(config)
opt = torch.optim.AdamW(maker.parameters())  # as ami-robot train-subgoals does after its resets
z = torch.nn.functional.layer_norm(torch.randn(2, 4, 8), (8,))
maker(z, z, torch.tensor([0, 1])).sum().backward()
opt.step()
""",
}

# Headless backends to try: EGL always (the default); OSMesa where its library is installed
# (.ci/run falls back to it on machines without EGL).
BACKENDS = ["egl"] + (["osmesa"] if ctypes.util.find_library("OSMesa") else [])


def _run(code: str, backend: str = "egl") -> subprocess.CompletedProcess:
    # PYOPENGL_PLATFORM too: mujoco sets it in os.environ when imported, and a parent that
    # rendered with EGL would hand "egl" to an OSMesa child
    env = {**{k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}, "MUJOCO_GL": backend}
    return subprocess.run([sys.executable, "-W", "always", "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, check=False, timeout=600, env=env)


def _triton_installed() -> bool:
    out = _run("from ami_robot.envs.gl_setup import PRIVATE_LLVM_LIBS as L; import importlib.util as u; "
               "print(any(u.find_spec(p) for p, _ in L))")
    return out.stdout.strip() == "True"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(AFTER_RENDER))
def test_torch_after_render_does_not_crash(case: str, backend: str) -> None:
    out = _run(RENDER + AFTER_RENDER[case] + "\nenv.close()\nprint('ok')\n", backend)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), (
        f"MUJOCO_GL={backend}, render then {case}: exit code {out.returncode} (-11: SIGSEGV, 139 in a "
        f"shell)\n{out.stderr[-4000:]}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_triton_library_is_loaded_with_the_envs_before_mujoco() -> None:
    # The mechanism, not only its outcome: where triton is installed its library is mapped once
    # ami_robot.envs is imported, before any OpenGL library, and torch is still not imported.
    code = """
import sys
import ami_robot.envs
from ami_robot.envs.gl_setup import _PRELOADED
print(len(_PRELOADED), "libtriton" in open("/proc/self/maps").read(), "torch" in sys.modules)
"""
    out = _run(code, "osmesa" if "osmesa" in BACKENDS else "egl")
    assert out.returncode == 0, out.stderr[-4000:]
    preloaded, mapped, torch_imported = out.stdout.split()
    assert torch_imported == "False"
    if preloaded == "0":
        pytest.skip("no private-LLVM package (triton) installed in this venv: nothing to preload")
    assert mapped == "True" and "RuntimeWarning" not in out.stderr, out.stderr[-2000:]


@pytest.mark.skipif("osmesa" not in BACKENDS, reason="OSMesa is not installed")
def test_mujoco_imported_first_with_osmesa_warns_instead_of_crashing() -> None:
    if not _triton_installed():
        pytest.skip("no private-LLVM package (triton) installed in this venv")
    # Too late to keep the two LLVMs apart: no preload (it would crash at import), a warning that
    # says how to order the imports instead.
    out = _run("import mujoco\nimport ami_robot.envs\nprint('imported')\n", "osmesa")
    assert out.returncode == 0 and out.stdout.strip() == "imported", out.stderr[-4000:]
    assert "RuntimeWarning" in out.stderr
    assert "Import ami_robot.envs (or torch._dynamo) before mujoco" in out.stderr
