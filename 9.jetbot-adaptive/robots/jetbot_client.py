"""The JetBot over the network: RemoteJetBot speaks RPyC, JetBotInterface turns it into a RobotInterface.

    laptop                                          robot (jetbot_server.py) or sim_jetbot_server.py
    JetBotInterface.execute_action(action)
      -> RemoteJetBot.set_motors(l, r)   --RPyC/TCP-->  exposed_set_motors(l, r)  (clamped, watchdog)
    JetBotInterface.get_observation()
      -> RemoteJetBot.get_frame()        --RPyC/TCP-->  exposed_get_camera_frame() -> base64 JPEG str
         base64 -> JPEG bytes -> cv2.imdecode (BGR) -> RGB (H, W, 3) uint8

Only two remote methods exist and only strings and floats cross the wire, so nothing on either side can
reach the other's objects. Every network failure (refused, reset, time-out, server gone, a server whose
rpyc speaks another wire format) becomes one exception type, ``RobotConnectionError``, which callers
catch to save their work and exit cleanly. A reply that is not a decodable frame is not an error of
the connection: it becomes ``None`` and ``last_bad_frame`` says what the server sent instead.
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
import time

import cv2
import numpy as np
import rpyc
from rpyc.core.stream import SocketStream
from rpyc.utils.factory import connect_stream

from .interface import RobotConnectionError, RobotInterface

DEFAULT_PORT = 18861
# What a dead connection looks like from rpyc: the socket errors, EOF and rpyc's own time-out.
NETWORK_ERRORS = (OSError, EOFError, TimeoutError, rpyc.AsyncResultTimeout)


def decode_frame(b64_jpeg: str) -> np.ndarray | None:
    """A base64-encoded JPEG string -> (H, W, 3) uint8 RGB, or None when it does not decode."""
    return decode_frame_or_reason(b64_jpeg)[0]


def decode_frame_or_reason(payload) -> tuple[np.ndarray | None, str]:
    """Decode a server reply: ((H, W, 3) uint8 RGB, "") or (None, what the server sent instead).

    ``type(...)`` and not ``isinstance``: a reply passed by reference (an rpyc netref) claims the class
    of the remote object; only a real str or bytes is decoded, so no remote code ever runs here.
    """
    if type(payload) not in (str, bytes):
        return None, f"a {type(payload).__name__}, not a base64 JPEG string"
    head = repr(payload[:24]) + ("..." if len(payload) > 24 else "")
    if len(payload) == 0:
        return None, "an empty string"
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None, f"{len(payload)} characters that are not base64 ({head})"
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
        return None, f"{len(data)} bytes of base64 that are not a JPEG image ({data[:16]!r}...)"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ""


def rpyc_version() -> str:
    """The installed rpyc version as text, e.g. '5.3.1'."""
    return ".".join(str(v) for v in rpyc.version.version)


class RemoteJetBot:
    """A client for a JetBot RPyC camera server: ``get_camera_frame()`` and ``set_motors(l, r)``.

    Args:
        ip: the robot's address (or 127.0.0.1 for ``sim_jetbot_server.py``).
        port: the server's port (18861 by default).
        connect_timeout_s: give up connecting after this long.
        call_timeout_s: give up on any single remote call after this long.
    """

    def __init__(
        self, ip: str, port: int = DEFAULT_PORT, connect_timeout_s: float = 5.0, call_timeout_s: float = 3.0
    ):
        """Connect now (TCP_NODELAY: small requests leave at once); RobotConnectionError if we cannot."""
        self.address = f"{ip}:{port}"
        try:
            stream = SocketStream.connect(ip, port, timeout=connect_timeout_s, nodelay=True, attempts=1)
            config = {
                "sync_request_timeout": call_timeout_s,
                "allow_pickle": False,
                "allow_public_attrs": False,
            }
            self._conn = connect_stream(stream, config=config)
            # Look the two remote methods up once: each lookup is a network round trip of its own.
            self._methods = {
                name: getattr(self._conn.root, name) for name in ("get_camera_frame", "set_motors")
            }
        except NETWORK_ERRORS as e:
            raise RobotConnectionError(
                f"cannot connect to the JetBot server at {self.address}: {e}"
            ) from None
        except AttributeError as e:
            self.close()
            raise RobotConnectionError(f"{self.address} is not a JetBot camera server ({e})") from None
        except Exception as e:  # noqa: BLE001 - anything else in the handshake is a reply we cannot parse
            self.close()
            raise RobotConnectionError(
                f"the server at {self.address} answered in a format this rpyc {rpyc_version()} cannot parse "
                f"({type(e).__name__}: {e}): rpyc version mismatch? use rpyc 5.x on the robot and here "
                "(rpyc 6 changed the wire format; see the README)"
            ) from None
        self.decode_failures = 0
        self.last_bad_frame: str | None = None  # what the server sent the last time a frame was bad

    def _call(self, name: str, *args):
        """Call a remote method; any network failure becomes RobotConnectionError."""
        if self._conn is None:
            raise RobotConnectionError(f"the connection to {self.address} is closed")
        try:
            return self._methods[name](*args)
        except NETWORK_ERRORS as e:
            self.close()
            raise RobotConnectionError(
                f"lost the JetBot server at {self.address}: {e or type(e).__name__}"
            ) from None

    def get_camera_frame(self) -> str:
        """The raw reply: the latest frame as a base64-encoded JPEG string."""
        return self._call("get_camera_frame")

    def get_frame(self) -> np.ndarray | None:
        """The latest frame as (H, W, 3) uint8 RGB, or None if it is bad: counted in ``decode_failures``
        and described in ``last_bad_frame``."""
        try:
            payload = self.get_camera_frame()
        except RobotConnectionError:
            raise
        except Exception as e:  # noqa: BLE001 - the server's own error (camera), re-raised here by rpyc
            frame, why = None, f"an error instead of a frame ({type(e).__name__}: {str(e).splitlines()[0]})"
        else:
            frame, why = decode_frame_or_reason(payload)
        if frame is None:
            self.decode_failures += 1
            self.last_bad_frame = why
        return frame

    def set_motors(self, left: float, right: float) -> None:
        """Set both wheel speeds in [-1, 1] (the server clamps too)."""
        self._call("set_motors", float(left), float(right))

    def stop(self) -> None:
        """Both motors to 0."""
        self.set_motors(0.0, 0.0)

    def close(self) -> None:
        """Close the connection (idempotent, never raises)."""
        conn, self._conn = getattr(self, "_conn", None), None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead socket may fail in many ways; it is closed
                pass


class JetBotInterface(RobotInterface):
    """The JetBot as a RobotInterface: duration-based actions with smooth ramps and an automatic stop.

    An action is ``{"motor_left": l, "motor_right": r, "duration": s}``: ramp from 0 to (l, r) in
    ``ramp_steps`` steps of ``ramp_step_s``, hold, ramp back down, and stop ``duration`` seconds after
    the start (a stay lasts as long, so every step takes the same time). The
    default action space is the seed's: stay (right motor 0) or turn forward (right motor 0.12).

    Observations are ``frame_size`` x ``frame_size`` (default: ``camera_size``, what the server is
    expected to send). A learner passes its model's size, so the frame is shrunk once here and a
    recording keeps frames at the size the model sees. A frame of another size than ``camera_size`` is
    resized too, with a one-time warning (a server started with other ``--width``/``--height``).

    Args:
        ip, port: where the server listens.
        speed: the right-motor value of the "move" action.
        duration: seconds each action holds its speed.
        camera_size: the side of the frames the server should send (its default 224).
        frame_size: the side of the observations handed on (None: ``camera_size``).
        warn: where the one-time size warning goes (stderr by default).
        jetbot: an already connected RemoteJetBot (for tests); otherwise one is created.
    """

    robot_type = "jetbot"
    MAX_DURATION_S = 5.0
    KEEPALIVE_S = 0.5  # re-send the speed while holding, well inside the server's 1 s watchdog

    def __init__(
        self,
        ip: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        speed: float = 0.12,
        duration: float = 0.2,
        ramp_steps: int = 4,
        ramp_step_s: float = 0.015,
        camera_size: int = 224,
        frame_size: int | None = None,
        warn=None,
        jetbot: RemoteJetBot | None = None,
        **client_kwargs,
    ):
        """Connect (RobotConnectionError if the server is unreachable) and make sure the motors are off."""
        self.jetbot = jetbot if jetbot is not None else RemoteJetBot(ip, port, **client_kwargs)
        self.speed, self.duration = speed, duration
        self.ramp_steps, self.ramp_step_s = ramp_steps, ramp_step_s
        self.camera_size, self.frame_size = camera_size, frame_size or camera_size
        self.warn = warn or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.size_warned = False
        self.jetbot.stop()

    @property
    def action_space(self) -> list[dict]:
        """Stay and move: right motor 0 or ``speed`` for ``duration`` seconds."""
        return [
            {"motor_left": 0.0, "motor_right": 0.0, "duration": self.duration},
            {"motor_left": 0.0, "motor_right": self.speed, "duration": self.duration},
        ]

    @property
    def last_failure(self) -> str | None:
        """What the server sent the last time a frame did not decode."""
        return self.jetbot.last_bad_frame

    def get_observation(self) -> np.ndarray | None:
        """The latest camera frame (frame_size, frame_size, 3) uint8 RGB; None if it did not decode."""
        frame = self.jetbot.get_frame()  # (H, W, 3) as sent
        if frame is None:
            return None
        h, w = frame.shape[:2]
        if (h, w) != (self.camera_size, self.camera_size) and not self.size_warned:
            self.size_warned = True
            self.warn(
                f"warning: the server sends {w}x{h} frames, expected {self.camera_size}x{self.camera_size}; "
                f"each is resized to {self.frame_size}x{self.frame_size} (said once)"
            )
        if (h, w) != (self.frame_size, self.frame_size):  # area-averaged: a small detail keeps its weight
            frame = cv2.resize(frame, (self.frame_size, self.frame_size), interpolation=cv2.INTER_AREA)
        return frame

    def wait_for_frame(self, tries: int, wait_s: float = 0.05) -> bool:
        """True as soon as a frame decodes, False after ``tries`` bad ones ``wait_s`` apart (then
        ``last_failure`` says what came instead): check the camera before seconds of model building."""
        for _ in range(tries):
            if self.get_observation() is not None:
                return True
            time.sleep(wait_s)
        return False

    @staticmethod
    def check_action(action: dict) -> tuple[float, float, float]:
        """Check an action before anything moves: (left, right, duration), or ValueError naming the form."""
        expected = "{'motor_left': float in [-1, 1], 'motor_right': float in [-1, 1], 'duration': seconds}"
        if not isinstance(action, dict) or set(action) != {"motor_left", "motor_right", "duration"}:
            raise ValueError(f"malformed JetBot action {action!r}: expected {expected}")
        values = []
        for key in ("motor_left", "motor_right", "duration"):
            v = action[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(
                    f"malformed JetBot action: {key}={v!r} is not a finite number; expected {expected}"
                )
            values.append(float(v))
        left, right, duration = values
        if abs(left) > 1 or abs(right) > 1 or not 0 < duration <= JetBotInterface.MAX_DURATION_S:
            raise ValueError(
                f"JetBot action out of range {action!r}: motors in [-1, 1], "
                f"0 < duration <= {JetBotInterface.MAX_DURATION_S} s"
            )
        return left, right, duration

    def execute_action(self, action: dict) -> bool:
        """Ramp up, hold, ramp down and stop, all within ``duration`` seconds. A network failure raises
        RobotConnectionError (the server's watchdog then stops the wheels within a second)."""
        left, right, duration = self.check_action(action)
        start = time.monotonic()
        if left == 0 and right == 0:
            self.jetbot.stop()
            time.sleep(duration)  # "stay" takes as long as "move": every step has the same length
            return True
        ramp = [i / self.ramp_steps for i in range(1, self.ramp_steps + 1)]  # 1/4, 2/4, 3/4, 4/4
        for f in ramp:  # ramp up: no jolt that tips the robot or blurs the camera
            self.jetbot.set_motors(left * f, right * f)
            time.sleep(self.ramp_step_s)
        # Hold until the ramp-down (ramp_steps - 1 steps) ends exactly at `duration`, with the stop.
        hold_end = start + max(0.0, duration - (self.ramp_steps - 1) * self.ramp_step_s)
        while (remaining := hold_end - time.monotonic()) > 0:
            time.sleep(min(remaining, self.KEEPALIVE_S))
            if hold_end - time.monotonic() > 0:
                self.jetbot.set_motors(left, right)  # keep-alive for long actions (watchdog is 1 s)
        for f in ramp[-2::-1]:  # ramp down: 3/4, 2/4, 1/4
            self.jetbot.set_motors(left * f, right * f)
            time.sleep(self.ramp_step_s)
        self.jetbot.stop()  # the automatic stop: motors are 0 when execute_action returns
        return True

    def cleanup(self) -> None:
        """Stop the motors if the server is still there, then close the connection."""
        try:
            self.jetbot.stop()
        except RobotConnectionError:
            pass  # already gone: its watchdog stops the wheels
        self.jetbot.close()
