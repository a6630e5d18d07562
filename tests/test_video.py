"""Episode videos: the cameras at a size a person can see beside the goal and the sub-goal planned
toward, the step and energy written on each frame, while the policy reads its own image size."""

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np

from ami_robot.agent import GoalSchedule
from ami_robot.envs import TASK_SPECS
from ami_robot.episodes import run_episodes
from ami_robot.evaluation import EpisodeLog
from ami_robot.video import VIDEO_SIZE, compose, video_name

BAR = 22  # px of each text bar (ami_robot.video)


class SubgoalFollower:
    """Stands still while its schedule walks through two sub-goals (2 steps each), then the goal."""

    def reset(self, obs, info) -> None:
        self.schedules = [GoalSchedule([*info["subgoal_pixels"][:2], info["goal_pixels"]], budgets=(2, 2))]
        self.energies: list[float] = []
        self.sizes: set[tuple[int, ...]] = set()

    def act(self, obs) -> np.ndarray:
        self.sizes.add(obs["pixels"].shape)
        self.energies.append(0.5)
        self.schedules[0].step(0.5)
        return np.zeros(7, np.float32)


def test_compose_labels_each_panel_and_writes_the_caption() -> None:
    frame = compose([("a", np.zeros((32, 32, 3), np.uint8)), ("b", np.zeros((64, 48, 3), np.uint8))],
                    "step 3/30   planned energy 0.1234", size=96)
    assert frame.shape == (96 + 2 * BAR, 2 * 96, 3)
    assert frame[:BAR].std() > 0 and frame[BAR : 2 * BAR].std() > 0  # text in the caption and label bars
    assert frame[2 * BAR :].max() == 0  # the images themselves, untouched


def test_episode_video_shows_views_goal_and_current_subgoal_at_display_size(tmp_path) -> None:
    policies = []

    def factory():
        policies.append(SubgoalFollower())
        return policies[-1]

    log = EpisodeLog(tmp_path / "episodes.jsonl", {"test": 1})
    [record] = run_episodes("PickPlace", [10003], factory, log, "follower", env_kwargs={"image_size": 32},
                            video_dir=tmp_path / "videos", progress=False)
    log.close()
    assert policies[0].sizes == {(32, 32, 3)}  # the policy reads its own size
    assert record["energies"] == [0.5] * TASK_SPECS["PickPlace"].budget
    frames = imageio.mimread(tmp_path / "videos" / video_name("PickPlace", "follower", 10003), memtest=False)
    assert len(frames) == TASK_SPECS["PickPlace"].budget + 1  # reset, then one per action
    assert frames[0].shape == (VIDEO_SIZE + 2 * BAR, 3 * VIDEO_SIZE, 3)  # camera | goal | sub-goal

    env = gym.make(TASK_SPECS["PickPlace"].env_id, image_size=32, render_mode="rgb_array",
                   render_size=VIDEO_SIZE)
    env.reset(seed=10003)
    shown = env.unwrapped.render_views()
    env.close()

    def panel(frame, j):
        return frame[2 * BAR :, j * VIDEO_SIZE : (j + 1) * VIDEO_SIZE].astype(float)

    pictures = {"goal": shown["goal_pixels"], "subgoal 1": shown["subgoal_pixels"][0],
                "subgoal 2": shown["subgoal_pixels"][1]}

    def which(image):  # the display frame it is (through H.264: ~2 levels off it, 5-55 off the others)
        return min(pictures, key=lambda name: np.abs(image - pictures[name]).mean())

    assert which(panel(frames[0], 1)) == "goal"
    assert [which(panel(frames[k], 2)) for k in (0, 1, 2, 3, 4, 80)] == [
        "subgoal 1", "subgoal 1", "subgoal 2", "subgoal 2", "goal", "goal"]  # 2 steps each, then the goal
    assert np.abs(panel(frames[0], 2) - pictures["subgoal 1"]).mean() < 4  # at display size, not enlarged
