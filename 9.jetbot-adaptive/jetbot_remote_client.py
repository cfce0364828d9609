"""Watch a JetBot's camera live: the quickest check that the robot, the server and the network work.

    uv run jetbot_remote_client.py --ip 192.168.1.42            # OpenCV window; q quits
    uv run jetbot_remote_client.py --ip 127.0.0.1 --no-display  # headless: print frames per second

With ``--no-display`` it prints the measured frame rate once per second (``--seconds`` limits the run):
that is how this chapter measures the sim server's loopback throughput.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import cv2
from robots import DEFAULT_PORT, RemoteJetBot, RobotConnectionError


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
    """Pull frames as fast as the server gives them; show them or count them. Returns the exit code."""
    s = parse_args(argv)
    try:
        bot = RemoteJetBot(s.ip, s.port)
    except RobotConnectionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = window_start = time.perf_counter()
    frames = window_frames = bad = 0
    try:
        while s.seconds == 0 or time.perf_counter() - start < s.seconds:
            frame = bot.get_frame()  # (H, W, 3) uint8 RGB, or None if it did not decode
            if frame is None:
                bad += 1
                continue
            frames += 1
            window_frames += 1
            now = time.perf_counter()
            if now - window_start >= 1.0:
                fps, window_start, window_frames = window_frames / (now - window_start), now, 0
                if s.no_display:
                    print(
                        f"{fps:6.1f} frames/s  {frame.shape[1]}x{frame.shape[0]}  undecodable: {bad}",
                        flush=True,
                    )
            if not s.no_display:
                cv2.imshow(f"JetBot {s.ip}:{s.port} (q quits)", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
    except RobotConnectionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
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
