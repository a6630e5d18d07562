"""A non-editable wheel carries everything the package needs: envs, planners, configs, weights."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents_and_import(tmp_path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(tmp_path.glob("ami_robot-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("ami_robot/envs/assets/scene.xml", "ami_robot/envs/assets/panda.xml",
                     "ami_robot/planners/cem.py", "ami_robot/conf/eval.yaml",
                     "ami_robot/conf/planner/cem.yaml", "ami_robot/conf/hydra/launcher/slurm.yaml",
                     "ami_robot/apps/__init__.py", "ami_robot/policies/latent.py",
                     "ami_robot/policies/retrieval/policy.py", "ami_robot/models/locator.py"):
        assert required in names, f"{required} missing from the wheel"
    shipped = sorted(p.name for p in (ROOT / "checkpoints").glob("*.safetensors"))
    shipped += ["config.json", "README.md"]  # the model folder's hub layout (ami_robot/hub.py)
    shipped += [f"two_view/{name}" for name in ("model.safetensors", "config.json", "README.md")]
    assert all(f"ami_robot/checkpoints/{name}" in names for name in shipped)
    # Installed (unpacked) away from the checkout, the envs import and build a scene.
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = ("import gymnasium as gym, ami_robot.envs, ami_robot.planners; "
            "env = gym.make('ami_robot/Reach-v0', image_size=32); env.reset(seed=0); "
            "print(ami_robot.envs.__file__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin",
                                            "MUJOCO_GL": "egl", "PYTHONNOUSERSITE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert str(target) in out.stdout
