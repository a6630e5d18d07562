"""One MuJoCo simulation of the arm scene and its differential-IK controller.

`ArmSim` owns an `MjData` (the model is shared, so an environment can run a second `ArmSim`
as a scratch copy to realise goals) and the controller's state: the TCP pose target and the
gripper command. An action moves the target; `simulate` advances one control period while
the controller tracks the target:

- The target pose is interpolated from the previous one to the new one over the first
  `ramp` fraction of the period (<= 0.4 m/s and 2 rad/s at the action bounds), then held.
- Every `ik_every` physics steps, damped least squares on the TCP site's 6-D Jacobian turns
  the pose error (position, rotation vector) into a joint step dq = J^T (J J^T + lambda^2 I)^-1 K e,
  plus a null-space pull of the elbow towards the home posture; dq is scaled down so that
  the servo velocity (kp / kv) dq stays under the Panda's joint speed limits, and the servo
  command q + dq is clipped to the joint limits (minus a small margin).

Timing: physics dt 0.005 s (assets/scene.xml), 50 physics steps per action, IK every 5 of them
(40 Hz). dt 0.01 s is unstable with Menagerie's gains and 0.1 armature: shoulder joints 1 and 3
counter-rotating (near-collinear axes) form a mode of inertia ~0.2 kg m^2 against kp 4500 + 3500,
omega ~200 rad/s, omega dt ~2 at 0.01 s (the explicit stability limit), ~1 at 0.005 s. IK at the
physics rate tracks no better than at 40 Hz (3-4 mm mean error under moderate random actions for
both) and costs ~0.6 ms more per action; benchmarks/bench_envs.py prints the resulting speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from ami_robot.envs.specs import (
    CONTROL_PERIOD,
    FINGER_MAX,
    HOME_QPOS,
    JOINT_HIGH,
    JOINT_LOW,
    JOINT_VEL_MAX,
    ORIENTATION_LIMIT,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
)

ASSET_DIR = Path(__file__).resolve().parent / "assets"
SCENE_XML = ASSET_DIR / "scene.xml"
N_ARM = 7  # arm joints: qpos[0:7], qvel[0:7], ctrl[0:7]
SERVO_TIME = 0.1  # s: kv / kp of every arm servo (450/4500 = 350/3500 = 200/2000)
# mj_getState spec of the full physics snapshot (time, qpos, qvel, act, ctrl, warmstart, ...)
STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
DOWN = Rotation.from_euler("x", np.pi)  # the TCP pointing at the table, fingers closing along y
DOWN_QUAT = DOWN.as_quat(scalar_first=True)
DOWN_INV_QUAT = DOWN.inv().as_quat(scalar_first=True)
# a limit must move the target by more than this (m, rad, gripper command) to count as clipping:
# a target left at a limit drifts by rounding (Euler <-> quaternion round trips, float32 actions
# such as an expert's target - current deltas), which is not the action being clipped
LIMIT_TOL = 1e-6


# Rotation conventions are scipy's (extrinsic "xyz" Euler; tests/envs checks these against
# scipy.spatial.transform.Rotation); MuJoCo's own functions are used because they are ~20x faster
# than building Rotation objects, and these run every control step.
def euler_to_quat(euler: np.ndarray) -> np.ndarray:
    """Quaternion (w x y z) of extrinsic xyz Euler angles (scipy's "xyz"; MuJoCo's "XYZ")."""
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.asarray(euler, np.float64), "XYZ")
    return quat


def matrix_to_euler(mat: np.ndarray) -> np.ndarray:
    """Extrinsic xyz Euler angles of a rotation matrix R = Rz(c) Ry(b) Rx(a), as scipy's as_euler("xyz").

    Exact away from pitch b = +-pi/2, which the orientation limits keep the TCP far from.
    """
    return np.array([
        np.arctan2(mat[2, 1], mat[2, 2]),
        np.arcsin(np.clip(-mat[2, 0], -1.0, 1.0)),
        np.arctan2(mat[1, 0], mat[0, 0]),
    ])


def quat_to_euler(quat: np.ndarray) -> np.ndarray:
    """Extrinsic xyz Euler angles of a quaternion (w x y z)."""
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, quat)
    return matrix_to_euler(mat.reshape(3, 3))


def load_model() -> mujoco.MjModel:
    """Compile assets/scene.xml (robot + table + object + cameras)."""
    return mujoco.MjModel.from_xml_path(str(SCENE_XML))


@dataclass(frozen=True)
class ControllerConfig:
    """Differential-IK tracking of the TCP pose target."""

    ik_every: int = 5  # physics steps between IK updates (5 x 5 ms = 40 Hz; 1 = at physics rate)
    gain: float = 3.0  # K: servo offset per unit of error; a servo closes 1 - exp(-t / 0.1 s) of it in t
    damping: float = 0.05  # lambda of damped least squares (m, rad)
    ramp: float = 0.6  # fraction of the control period over which the target moves
    null_gain: float = 0.1  # pull of the redundant (elbow) motion towards the home posture
    limit_margin: float = 0.01  # rad kept clear of each joint limit

    def __post_init__(self) -> None:
        if self.ik_every < 1 or not 0 < self.ramp <= 1 or self.gain <= 0 or self.damping < 0:
            raise ValueError(f"bad controller config {self}")


class ArmSim:
    """A simulation (shared model, own data) plus the controller's pose target and gripper command."""

    def __init__(self, model: mujoco.MjModel, config: ControllerConfig | None = None) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.config = config or ControllerConfig()
        self.n_substeps = round(CONTROL_PERIOD / model.opt.timestep)
        if self.n_substeps % self.config.ik_every:
            raise ValueError("ik_every must divide the physics steps per control period")
        self.tcp_id = model.site("tcp").id
        self.object_body = model.body("object").id
        self.object_qpos = model.jnt_qposadr[model.joint("object_joint").id]
        self.object_dof = model.jnt_dofadr[model.joint("object_joint").id]
        self.finger_qpos = [model.jnt_qposadr[model.joint(n).id] for n in ("finger_joint1", "finger_joint2")]
        self.pad_geoms = (model.geom("left_pad").id, model.geom("right_pad").id)
        margin = self.config.limit_margin
        self._q_low = np.array(JOINT_LOW) + margin
        self._q_high = np.array(JOINT_HIGH) - margin
        self._dq_max = np.array(JOINT_VEL_MAX) * SERVO_TIME
        self._q_home = np.array(HOME_QPOS)
        self._ws_low, self._ws_high = np.array(WORKSPACE_LOW), np.array(WORKSPACE_HIGH)
        self._rot_limit = np.array(ORIENTATION_LIMIT)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._jac = np.zeros((6, N_ARM))
        self._err = np.zeros(6)
        self._quat = np.zeros(4)
        self._quat_inv = np.zeros(4)
        self._quat_err = np.zeros(4)
        self._eye6 = np.eye(6) * self.config.damping**2
        self._sys = np.zeros((6, 6))
        self._y = np.zeros(6)
        self.target_pos = np.zeros(3)
        self.target_quat = np.array([1.0, 0.0, 0.0, 0.0])  # w x y z, world frame
        self.gripper_cmd = 0.0  # 0 open .. 1 closed
        self._start_pos = self.target_pos.copy()
        self._start_quat = self.target_quat.copy()

    # ------------------------------------------------------------------ reset and actions
    def reset(self, qpos_arm: np.ndarray, object_pos: np.ndarray, object_quat: np.ndarray) -> None:
        """Put the arm at `qpos_arm` (gripper open, at rest), the object at a pose, the target at the TCP."""
        m, d = self.model, self.data
        mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
        d.qpos[:N_ARM] = qpos_arm
        d.qpos[self.object_qpos : self.object_qpos + 3] = object_pos
        d.qpos[self.object_qpos + 3 : self.object_qpos + 7] = object_quat
        d.ctrl[:N_ARM] = qpos_arm
        d.ctrl[N_ARM] = FINGER_MAX
        mujoco.mj_forward(m, d)
        self.target_pos[:] = d.site_xpos[self.tcp_id]
        mujoco.mju_mat2Quat(self.target_quat, d.site_xmat[self.tcp_id])
        self.gripper_cmd = 0.0
        self._start_pos[:] = self.target_pos
        self._start_quat[:] = self.target_quat

    def apply_action(self, action: np.ndarray) -> bool:
        """Move the target: xyz + delta (clipped to the workspace), R_delta * R (clipped to the
        orientation limits), gripper command + delta (clipped to [0, 1]).

        Returns whether any of those limits changed the target by more than LIMIT_TOL.
        """
        self._start_pos[:] = self.target_pos
        self._start_quat[:] = self.target_quat
        pos = self.target_pos + action[:3]
        self.target_pos[:] = np.clip(pos, self._ws_low, self._ws_high)
        limited = bool(np.any(np.abs(self.target_pos - pos) > LIMIT_TOL))
        quat = self.target_quat
        mujoco.mju_mulQuat(quat, euler_to_quat(action[3:6]), self._start_quat)  # R_delta * R
        # keep the orientation reachable: relative to pointing down, as extrinsic xyz Euler, clipped
        rel = np.zeros(4)
        mujoco.mju_mulQuat(rel, quat, DOWN_INV_QUAT)
        euler = quat_to_euler(rel)
        clipped = np.clip(euler, -self._rot_limit, self._rot_limit)
        if np.any(clipped != euler):
            mujoco.mju_mulQuat(quat, euler_to_quat(clipped), DOWN_QUAT)
            limited |= bool(np.any(np.abs(clipped - euler) > LIMIT_TOL))
        mujoco.mju_normalize4(quat)
        grip = self.gripper_cmd + action[6]
        self.gripper_cmd = float(np.clip(grip, 0.0, 1.0))
        limited |= bool(abs(self.gripper_cmd - grip) > LIMIT_TOL)
        return limited

    def simulate(self) -> None:
        """Advance one control period (CONTROL_PERIOD s) tracking the target; leaves data forward-computed."""
        m, d, cfg = self.model, self.data, self.config
        d.ctrl[N_ARM] = FINGER_MAX * (1.0 - self.gripper_cmd)
        n_updates = self.n_substeps // cfg.ik_every
        n_ramp = max(1, round(cfg.ramp * n_updates))
        rotvec = np.zeros(3)
        mujoco.mju_negQuat(self._quat_inv, self._start_quat)
        mujoco.mju_mulQuat(self._quat_err, self._quat_inv, self.target_quat)
        if self._quat_err[0] < 0:
            self._quat_err *= -1
        mujoco.mju_quat2Vel(rotvec, self._quat_err, 1.0)  # body-frame rotation start -> target
        pos, quat = np.empty(3), np.empty(4)
        for i in range(n_updates):
            s = min(1.0, (i + 1) / n_ramp)
            pos[:] = self._start_pos + s * (self.target_pos - self._start_pos)
            quat[:] = self._start_quat
            mujoco.mju_quatIntegrate(quat, rotvec, s)
            if i:  # the first update uses the state forward-computed by the previous period
                mujoco.mj_kinematics(m, d)
                mujoco.mj_comPos(m, d)
            self._ik_update(pos, quat)
            mujoco.mj_step(m, d, nstep=cfg.ik_every)
        mujoco.mj_forward(m, d)

    def _ik_update(self, pos: np.ndarray, quat: np.ndarray) -> None:
        """One damped-least-squares step towards (pos, quat); sets the arm servo commands."""
        m, d, cfg = self.model, self.data, self.config
        mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self.tcp_id)
        jac, err, sys = self._jac, self._err, self._sys
        jac[:3] = self._jacp[:, :N_ARM]
        jac[3:] = self._jacr[:, :N_ARM]
        np.subtract(pos, d.site_xpos[self.tcp_id], out=err[:3])
        mujoco.mju_mat2Quat(self._quat, d.site_xmat[self.tcp_id])
        mujoco.mju_negQuat(self._quat_inv, self._quat)
        mujoco.mju_mulQuat(self._quat_err, quat, self._quat_inv)
        if self._quat_err[0] < 0:  # the short way round
            self._quat_err *= -1
        mujoco.mju_quat2Vel(err[3:], self._quat_err, 1.0)  # world-frame rotation vector
        q = d.qpos[:N_ARM]
        z = self._q_home - q  # posture error, pulled along the null space only
        # y = (J J^T + lambda^2 I)^-1 (K e - k J z); dq = J^T y + k z = J+ K e + k (I - J+ J) z
        np.matmul(jac, jac.T, out=sys)
        sys += self._eye6
        mujoco.mju_cholFactor(sys, 0.0)
        rhs = cfg.gain * err - cfg.null_gain * (jac @ z)
        mujoco.mju_cholSolve(self._y, sys, rhs)
        dq = jac.T @ self._y + cfg.null_gain * z
        # scale (not clip) so the step keeps its direction: clipping joints one by one would leak
        # the posture term into the task and fight the task direction
        dq *= min(1.0, 1.0 / float(np.max(np.abs(dq) / self._dq_max)))
        dq += q
        d.ctrl[:N_ARM] = np.minimum(np.maximum(dq, self._q_low, out=dq), self._q_high, out=dq)

    # ------------------------------------------------------------------ kinematic IK
    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, iters: int = 200, tol: float = 1e-5) -> np.ndarray:
        """Joint angles putting the TCP at (pos, quat), from home, by kinematics only (clobbers data)."""
        m, d = self.model, self.data
        mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
        for _ in range(iters):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self.tcp_id)
            self._jac[:3] = self._jacp[:, :N_ARM]
            self._jac[3:] = self._jacr[:, :N_ARM]
            self._err[:3] = pos - d.site_xpos[self.tcp_id]
            mujoco.mju_mat2Quat(self._quat, d.site_xmat[self.tcp_id])
            mujoco.mju_negQuat(self._quat_inv, self._quat)
            mujoco.mju_mulQuat(self._quat_err, quat, self._quat_inv)
            if self._quat_err[0] < 0:
                self._quat_err *= -1
            mujoco.mju_quat2Vel(self._err[3:], self._quat_err, 1.0)
            if np.linalg.norm(self._err) < tol:
                break
            dq = self._jac.T @ np.linalg.solve(self._jac @ self._jac.T + 1e-4 * np.eye(6), self._err)
            d.qpos[:N_ARM] = np.clip(d.qpos[:N_ARM] + dq, self._q_low, self._q_high)
        return d.qpos[:N_ARM].copy()

    # ------------------------------------------------------------------ privileged readings
    def tcp_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.tcp_id].copy()

    def tcp_rotation(self) -> Rotation:
        return Rotation.from_matrix(self.data.site_xmat[self.tcp_id].reshape(3, 3))

    def gripper_state(self) -> float:
        """Measured from the finger joints: 0 fully open (0.08 m) .. 1 closed."""
        opening = sum(self.data.qpos[i] for i in self.finger_qpos) / (2 * FINGER_MAX)
        return float(np.clip(1.0 - opening, 0.0, 1.0))

    def object_pos(self) -> np.ndarray:
        return self.data.qpos[self.object_qpos : self.object_qpos + 3].copy()

    def object_quat(self) -> np.ndarray:
        return self.data.qpos[self.object_qpos + 3 : self.object_qpos + 7].copy()

    def object_speed(self) -> float:
        return float(np.linalg.norm(self.data.qvel[self.object_dof : self.object_dof + 3]))

    def robot_state(self) -> np.ndarray:
        """float32[7]: TCP xyz (base frame), TCP extrinsic xyz Euler, gripper state."""
        euler = matrix_to_euler(self.data.site_xmat[self.tcp_id].reshape(3, 3))
        return np.concatenate([self.tcp_pos(), euler, [self.gripper_state()]]).astype(np.float32)

    def task_state(self) -> np.ndarray:
        """float64[7]: TCP xyz, gripper state, object xyz."""
        return np.concatenate([self.tcp_pos(), [self.gripper_state()], self.object_pos()])

    def pads_touching(self, geom: int) -> tuple[bool, bool]:
        """Whether the left and right finger pads touch `geom`."""
        pairs = self.data.contact.geom  # (ncon, 2) geom ids
        with_geom = pairs[(pairs == geom).any(axis=1)]
        return bool((with_geom == self.pad_geoms[0]).any()), bool((with_geom == self.pad_geoms[1]).any())

    # ------------------------------------------------------------------ snapshots
    def get_state(self) -> np.ndarray:
        """Physics snapshot (mj_getState, mjSTATE_INTEGRATION) + target pos, target quat, gripper command."""
        size = mujoco.mj_stateSize(self.model, STATE_SPEC)
        physics = np.empty(size)
        mujoco.mj_getState(self.model, self.data, physics, STATE_SPEC)
        return np.concatenate([physics, self.target_pos, self.target_quat, [self.gripper_cmd]])

    def set_state(self, state: np.ndarray) -> None:
        """Restore a `get_state` snapshot (same model and episode: object shape and size are not in it)."""
        size = mujoco.mj_stateSize(self.model, STATE_SPEC)
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (size + 8,):
            raise ValueError(f"sim state must have shape ({size + 8},), got {state.shape}")
        mujoco.mj_setState(self.model, self.data, state[:size], STATE_SPEC)
        self.target_pos[:] = state[size : size + 3]
        self.target_quat[:] = state[size + 3 : size + 7]
        self.gripper_cmd = float(state[size + 7])
        mujoco.mj_forward(self.model, self.data)

    def copy_from(self, other: ArmSim) -> None:
        """Make this simulation an exact copy of `other` (same model)."""
        self.set_state(other.get_state())
