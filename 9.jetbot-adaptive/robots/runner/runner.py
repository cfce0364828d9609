"""RobotRunner: see, choose, act, repeat; no learning, just the loop and its statistics.

    robot.get_observation() --frame--> action_selector(frame) --action--> robot.execute_action(action)
            ^                                                                         |
            +------------------------------- next step ------------------------------+

The runner owns the things every loop needs and nobody wants to rewrite: counting actions, timing each
stage, an optional live matplotlib view, an interactive mode where a person accepts or overrides each
action, and a clean stop (with the reason) when the robot disconnects, the frames stop coming, the
selector runs out of actions, the recording hits its disk cap or a person presses Ctrl-C.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
from config import MAX_BAD_FRAMES
from tqdm import tqdm

from robots import RobotConnectionError, RobotInterface
from robots.recording import RecordingDiskFullError

from .selectors import ActionSelector


def action_key(action: dict) -> str:
    """A stable, readable key for counting actions: the dict as compact sorted JSON."""
    return json.dumps(action, sort_keys=True, separators=(",", ":"))


def parse_typed_action(text: str, action_space: list[dict]) -> dict:
    """Turn what a person typed into an action: an index into the action space, or a JSON dict.

    Raises ValueError with a readable message for anything else.
    """
    text = text.strip()
    if text.isdigit():
        index = int(text)
        if index >= len(action_space):
            raise ValueError(f"index {index} is out of range: choose 0..{len(action_space) - 1}")
        return dict(action_space[index])
    try:
        action = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"type an index 0..{len(action_space) - 1}, a JSON action dict, or 'stop'") from None
    if not isinstance(action, dict):
        raise ValueError('a typed action must be a JSON object such as {"action": 1}')
    return action


class RobotRunner:
    """Run any ``RobotInterface`` with an action selector for a number of steps and collect statistics.

    Args:
        robot: the robot to drive.
        action_selector: ``observation -> (action, metadata)``; ``(None, ...)`` ends the run.
        display: show the frames live in a matplotlib window (skipped when there is no display).
        interactive: before each action ask on stdin: Enter accepts, a typed index or JSON dict overrides,
            ``stop`` ends the run.
        on_step: optional ``callback(step, observation, action, metadata)`` called after each action.
        max_missing_frames: consecutive ``None`` observations tolerated (each followed by a short wait)
            before the run stops with reason ``no frames`` (the error names what the robot sent).
        input_fn: where interactive answers come from (``input`` by default; tests pass a fake).
    """

    def __init__(
        self,
        robot: RobotInterface,
        action_selector: ActionSelector,
        display: bool = False,
        interactive: bool = False,
        on_step: Callable[[int, np.ndarray, dict, dict], None] | None = None,
        max_missing_frames: int = MAX_BAD_FRAMES,
        missing_frame_wait_s: float = 0.05,
        input_fn: Callable[[str], str] = input,
    ):
        """Store the parts; nothing runs until ``run``."""
        self.robot = robot
        self.action_selector = action_selector
        self.display = display and _display_available()
        self.interactive = interactive
        self.on_step = on_step
        self.max_missing_frames = max_missing_frames
        self.missing_frame_wait_s = missing_frame_wait_s
        self.input_fn = input_fn
        self._figure = None

    def run(self, num_steps: int, progress: bool = True) -> dict:
        """Run up to ``num_steps`` actions; return statistics (see ``_stats``). Never raises for a lost
        connection, missing frames, a full recording disk or Ctrl-C: those end the run with
        ``stop_reason`` set ('connection lost', 'no frames', 'disk cap reached', 'interrupted')."""
        if num_steps < 0:
            raise ValueError(f"num_steps must be >= 0, got {num_steps}")
        counts: Counter = Counter()
        times = {"observe": 0.0, "select": 0.0, "act": 0.0}
        missing, steps, stop_reason, error = 0, 0, "completed", None
        start = time.perf_counter()
        # disable=None: no bar when stderr is not a terminal (pipes, tests), so errors stay one line
        bar = tqdm(
            total=num_steps,
            desc="steps",
            disable=None if progress and not self.interactive else True,
            leave=False,
        )
        try:
            while steps < num_steps:
                t0 = time.perf_counter()
                observation = self.robot.get_observation()
                t1 = time.perf_counter()
                times["observe"] += t1 - t0
                if observation is None:
                    if self.robot.finished:
                        stop_reason = "robot finished"
                        break
                    missing += 1
                    if missing > self.max_missing_frames:
                        sent = getattr(self.robot, "last_failure", None) or "nothing"
                        stop_reason = "no frames"
                        error = f"{missing} frames in a row were unusable; the last one was {sent}"
                        break
                    time.sleep(self.missing_frame_wait_s)
                    continue
                missing = 0
                action, metadata = self.action_selector(observation)
                if self.interactive and action is not None:
                    action = self._ask(steps, action)
                t2 = time.perf_counter()
                times["select"] += t2 - t1
                if action is None:
                    stop_reason = "selector finished" if not self.interactive else "stopped by user"
                    break
                if hasattr(self.robot, "annotate"):  # a RecordingRobot keeps the selector's metadata
                    self.robot.annotate(metadata)
                try:
                    self.robot.execute_action(action)
                except ValueError as e:  # malformed: the robot refused it before moving
                    if not self.interactive:
                        raise
                    print(f"  {e}", file=sys.stderr)  # a person typed it: say why, ask again
                    continue
                times["act"] += time.perf_counter() - t2
                counts[action_key(action)] += 1
                steps += 1
                bar.update(1)
                if self.display:
                    self._show(observation, steps, action)
                if self.on_step is not None:
                    self.on_step(steps, observation, action, metadata)
        except RobotConnectionError as e:
            stop_reason, error = "connection lost", str(e)
        except RecordingDiskFullError as e:
            stop_reason, error = "disk cap reached", str(e)
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        finally:
            bar.close()
        return self._stats(steps, counts, times, time.perf_counter() - start, stop_reason, error)

    def _stats(self, steps, counts, times, seconds, stop_reason, error) -> dict:
        """Statistics of a run: action counts, total and per-stage timing, why it stopped."""
        per_step = {f"{k}_ms": 1000 * v / max(steps, 1) for k, v in times.items()}
        return {
            "steps": steps,
            "seconds": seconds,
            "steps_per_second": steps / seconds if seconds > 0 else 0.0,
            "action_counts": dict(counts),
            "mean_ms": per_step,
            "stop_reason": stop_reason,
            "error": error,
        }

    def _ask(self, step: int, proposed: dict) -> dict | None:
        """Interactive mode: show the proposal, return it, a typed override, or None for ``stop``."""
        space = self.robot.action_space
        if step == 0:
            print("actions: " + ", ".join(f"{i}={a}" for i, a in enumerate(space)))
        while True:
            try:
                answer = self.input_fn(f"step {step}: {proposed}  [Enter=accept, index/JSON=override, stop] ")
            except EOFError:  # stdin closed (Ctrl-D, or a pipe ran dry): same as typing stop
                return None
            if answer.strip() == "":
                return proposed
            if answer.strip().lower() == "stop":
                return None
            try:
                return parse_typed_action(answer, space)
            except ValueError as e:
                print(f"  {e}", file=sys.stderr)

    def _show(self, frame: np.ndarray, step: int, action: dict) -> None:
        """Update the live matplotlib view with the frame the action was chosen from."""
        import matplotlib.pyplot as plt

        if self._figure is None:
            plt.ion()
            self._figure, ax = plt.subplots(figsize=(4, 4))
            self._image = ax.imshow(frame)
            ax.axis("off")
        self._image.set_data(frame)
        self._figure.axes[0].set_title(f"step {step}: {action}", fontsize=8)
        plt.pause(0.001)


def _display_available() -> bool:
    """False on a headless Linux machine (no $DISPLAY / $WAYLAND_DISPLAY): the runner then skips the view."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True
