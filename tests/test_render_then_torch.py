"""Rendering an env and then using torch's lazily imported parts must not kill the process.

With the default-index torch (a CUDA build that ships triton) on a machine whose EGL is Mesa's,
the first OpenGL context puts Mesa's libLLVM in the global symbol scope and triton's LLVM, loaded
later by `torch.optim.Adam` (torch._dynamo -> triton), bound to it and segfaulted (exit 139).
envs/gl_setup.py preloads triton's library before the first context. Each case runs in a fresh
interpreter because the crash is the process's death, and the order of loading is the point.
.ci/run also runs this file in a second venv with the default-index torch.
"""

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
env.render() if env.render_mode else None
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
}


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          check=False, timeout=600)


@pytest.mark.parametrize("case", sorted(AFTER_RENDER))
def test_torch_after_render_does_not_crash(case: str) -> None:
    out = _run(RENDER + AFTER_RENDER[case] + "\nenv.close()\nprint('ok')\n")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), (
        f"render then {case}: exit code {out.returncode} (-11: SIGSEGV, 139 in a shell)\n"
        f"{out.stderr[-4000:]}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_triton_library_is_loaded_before_the_first_context() -> None:
    # The mechanism, not only its outcome: where triton is installed its library is mapped by the
    # time an env has rendered, and torch is still not imported.
    code = RENDER + """
from ami_robot.envs.gl_setup import private_llvm_libraries
libs = [str(p.resolve()) for p in private_llvm_libraries()]
maps = open("/proc/self/maps").read()
print(len(libs), all(lib in maps for lib in libs))
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr[-4000:]
    count, mapped = out.stdout.split()
    if count == "0":
        pytest.skip("no private-LLVM package (triton) installed in this venv: nothing to preload")
    assert mapped == "True", out.stdout
