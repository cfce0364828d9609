"""Watch a JetBot's camera live: the quickest check that the robot, the server and the network work.

    uv run robots/jetbot_remote_client.py --ip 192.168.1.42            # OpenCV window; q quits
    uv run robots/jetbot_remote_client.py --ip 127.0.0.1 --no-display  # headless: print frames per second

It prints the measured frame rate once per second (with or without a window; ``--seconds`` limits the
run, Ctrl-C ends it): that is how this chapter measures the sim server's loopback throughput. After
MAX_BAD_FRAMES (config.py) undecodable frames in a row it stops with one line naming what the server
sent; a lost server ends it with one line and exit code 2, like every script of this chapter.
"""

# ruff: noqa: E402 - imports follow the sys.path line below
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the chapter folder: runs from any cwd

import argparse
import time
from dataclasses import dataclass

import cv2
from config import LOST_CONNECTION_EXIT_CODE, MAX_BAD_FRAMES

from robots import DEFAULT_PORT, RemoteJetBot, RobotConnectionError, interrupt_on_signals


@dataclass
class ClientSettings:
    """Command-line settings of the viewer."""

    ip: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    no_display: bool = False
    seconds: float = 0.0  # 0: until q or Ctrl-C


def parse_args(argv=None) -> ClientSettings:
    """Flags -> settings; bad values are a usage error (exit code 2)."""
    d = ClientSettings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ip", default=d.ip, help="the JetBot's (or the sim server's) address")
    p.add_argument("--port", type=int, default=d.port, help="the server's port")
    p.add_argument("--no-display", action="store_true", help="no window: print frames per second")
    p.add_argument("--seconds", type=float, default=d.seconds, help="stop after this long (0: never)")
    a = p.parse_args(argv)
    if not 0 < a.port < 65536 or a.seconds < 0:
        p.error("--port must be in 1..65535 and --seconds >= 0")
    return ClientSettings(**vars(a))


def main(argv=None) -> int:
    """Pull frames as fast as the server gives them; show them and count them. Returns the exit code."""
    s = parse_args(argv)
    interrupt_on_signals()  # kill / a closed terminal end the run like Ctrl-C: summary, no traceback
    try:
        bot = RemoteJetBot(s.ip, s.port)
    except RobotConnectionError as e:
        print(f"error: {e}", file=sys.stderr)
        return LOST_CONNECTION_EXIT_CODE
    start = window_start = time.perf_counter()
    frames = window_frames = bad = bad_in_row = 0
    size = "no frame yet"
    try:
        while s.seconds == 0 or time.perf_counter() - start < s.seconds:
            frame = bot.get_frame()  # (H, W, 3) uint8 RGB, or None if it did not decode
            if frame is None:
                bad, bad_in_row = bad + 1, bad_in_row + 1
                if bad_in_row > MAX_BAD_FRAMES:
                    print(
                        f"error: {bad_in_row} frames in a row did not decode; the server sent "
                        f"{bot.last_bad_frame}",
                        file=sys.stderr,
                    )
                    return LOST_CONNECTION_EXIT_CODE
                time.sleep(0.05)  # give the camera a moment, as the runner and the learner do
            else:
                frames, window_frames, bad_in_row = frames + 1, window_frames + 1, 0
                size = f"{frame.shape[1]}x{frame.shape[0]}"
                if not s.no_display:
                    cv2.imshow(f"JetBot {s.ip}:{s.port} (q quits)", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
            now = time.perf_counter()
            if now - window_start >= 1.0:  # progress once a second, whatever the frames were
                fps, window_start, window_frames = window_frames / (now - window_start), now, 0
                print(f"{fps:6.1f} frames/s  {size}  undecodable: {bad}", flush=True)
    except RobotConnectionError as e:
        print(f"error: {e}", file=sys.stderr)
        return LOST_CONNECTION_EXIT_CODE
    except KeyboardInterrupt:
        pass
    except cv2.error:
        print("error: OpenCV cannot open a window here (no display?): use --no-display", file=sys.stderr)
        return 2
    finally:
        bot.close()
        if not s.no_display:
            cv2.destroyAllWindows()
    seconds = time.perf_counter() - start
    print(
        f"{frames} frames in {seconds:.1f} s: {frames / max(seconds, 1e-9):.1f} frames/s, {bad} undecodable"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
