"""A stand-in for the robot's ``jetbot`` package, so jetbot_server.py runs in tests without hardware.

``Camera.instance(width, height).value`` is a fixed BGR test pattern; ``Robot.set_motors`` appends each
command as a JSON line to the file named by $FAKE_JETBOT_LOG, so a test in another process can see them.
"""

import json
import os
import time

import numpy as np


class Camera:
    """The camera: ``value`` holds the latest BGR frame."""

    @classmethod
    def instance(cls, width=224, height=224):
        """The (single) camera at the given size."""
        return cls(width, height)

    def __init__(self, width, height):
        """A horizontal blue ramp with a red square: easy to recognise after JPEG."""
        self.value = np.zeros((height, width, 3), np.uint8)
        self.value[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
        self.value[height // 4 : height // 2, width // 4 : width // 2, 2] = 255

    def stop(self):
        """Release the camera."""


class Robot:
    """The motors: every command is logged."""

    def set_motors(self, left, right):
        """Log (time, left, right)."""
        with open(os.environ["FAKE_JETBOT_LOG"], "a") as f:
            f.write(json.dumps({"t": time.time(), "left": left, "right": right}) + "\n")

    def stop(self):
        """Both motors to 0."""
        self.set_motors(0.0, 0.0)
