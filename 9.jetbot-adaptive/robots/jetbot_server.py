"""The server that runs *on the JetBot*: its camera and motors, over RPyC, and nothing else.

Copy this one file to the robot and start it there (see the chapter README):

    python3 jetbot_server.py --host 0.0.0.0     # listen on every interface (default: 127.0.0.1), port 18861

It exposes exactly two methods, the protocol JetBot RPyC camera servers speak:

    get_camera_frame() -> str           the latest camera frame as a base64-encoded JPEG
    set_motors(left, right) -> None     wheel speeds, clamped to [-1, 1]

No classic (slave) mode, no attribute access, no pickle, and only plain numbers accepted as motor
values: a client can do nothing else with the robot. The motors stop on every way out: a watchdog
when no command has arrived for 1 s (a crashed client, a lost Wi-Fi link), a client disconnecting,
and the server ending (Ctrl-C, SIGTERM from ``kill`` or systemd, SIGHUP when the SSH session closes).

The robot runs JetPack's Python 3.6, so this file uses nothing newer (no dataclasses, no walrus,
no ``X | None``) and works with rpyc 5.0.1 (the newest pip installs on Python 3.6) up to 5.3.1; rpyc 6
speaks another wire format (see the README). ``sim_jetbot_server.py`` reuses ``JetBotService``.
"""

import argparse
import base64
import signal
import socket
import sys
import threading
import time

import cv2
import rpyc
from rpyc.utils.server import ThreadedServer

DEFAULT_PORT = 18861
WATCHDOG_S = 1.0


def clamp(value):
    """A motor value as a float in [-1, 1]; NaN and anything but a plain int or float become 0 (safe).

    ``type(...)`` and not ``isinstance``: an object a client passes by reference (an rpyc "netref")
    pretends to be of its remote class, and converting it would call the client's code.
    """
    if type(value) not in (int, float):
        return 0.0
    value = float(value)
    if value != value:  # NaN
        return 0.0
    return max(-1.0, min(1.0, value))


def encode_frame(bgr, quality=80):
    """A (H, W, 3) uint8 BGR image -> base64-encoded JPEG text."""
    ok, jpeg = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("could not encode the camera frame as JPEG")
    return base64.b64encode(jpeg.tobytes()).decode("ascii")


class JetBotHardware:
    """The real robot through the ``jetbot`` package: ``Camera`` (BGR frames) and ``Robot`` (motors)."""

    def __init__(self, width=224, height=224):
        """Start the camera and take the motors."""
        from jetbot import Camera, Robot  # only on the robot (tests put a fake ``jetbot`` on sys.path)

        self.camera = Camera.instance(width=width, height=height)
        self.robot = Robot()

    def read_frame(self):
        """The latest camera image, (H, W, 3) uint8 BGR."""
        return self.camera.value

    def set_motors(self, left, right):
        """Drive the two wheels."""
        self.robot.set_motors(left, right)

    def close(self):
        """Stop the wheels and the camera."""
        self.robot.stop()
        self.camera.stop()


class JetBotService(rpyc.Service):
    """The RPyC service: two exposed methods over a ``hardware`` object, plus the motor watchdog.

    ``hardware`` needs ``read_frame() -> BGR uint8 (H, W, 3)``, ``set_motors(left, right)`` and ``close()``.
    One instance serves every connection, so a lock keeps the motor commands in order.
    """

    def __init__(self, hardware, watchdog_s=WATCHDOG_S, jpeg_quality=80, log=print):
        """Wrap ``hardware`` and start the watchdog thread."""
        super().__init__()
        self._hardware = hardware
        self._lock = threading.Lock()
        self._motors = (0.0, 0.0)
        self._last_command = time.monotonic()
        self._watchdog_s = watchdog_s
        self._quality = jpeg_quality
        self._log = log
        self._running = True
        self._watchdog = threading.Thread(target=self._watch, name="motor-watchdog")
        self._watchdog.daemon = True
        self._watchdog.start()

    def exposed_get_camera_frame(self):
        """The latest camera frame as a base64-encoded JPEG string."""
        return encode_frame(self._hardware.read_frame(), self._quality)

    def exposed_set_motors(self, left, right):
        """Set the wheel speeds, each clamped to [-1, 1]; also feeds the watchdog."""
        left, right = clamp(left), clamp(right)
        with self._lock:
            if not self._running:  # shutting down: the motors stay stopped
                return
            self._hardware.set_motors(left, right)
            self._motors = (left, right)
            self._last_command = time.monotonic()

    def on_disconnect(self, conn):
        """A client left: stop the wheels (a new client starts from rest)."""
        self._stop_motors("client disconnected")

    def _stop_motors(self, why):
        """Motors to 0 if they are not already."""
        with self._lock:
            if self._motors != (0.0, 0.0):
                self._hardware.set_motors(0.0, 0.0)
                self._motors = (0.0, 0.0)
                self._log(f"motors stopped: {why}")

    def _watch(self):
        """Every 50 ms: stop the motors if they run and no command came for ``watchdog_s`` seconds."""
        while self._running:
            time.sleep(0.05)
            if time.monotonic() - self._last_command > self._watchdog_s:
                self._stop_motors(f"watchdog: no command for {self._watchdog_s:.1f} s")

    def shutdown(self, why="server shutting down"):
        """Stop the watchdog, send (0, 0) to the motors and release the hardware (idempotent)."""
        with self._lock:
            if not self._running:
                return
            self._running = False
            self._hardware.set_motors(0.0, 0.0)  # always, even if we believe they are stopped
            self._motors = (0.0, 0.0)
        self._log(f"motors stopped: {why}")
        self._hardware.close()


class NoDelayThreadedServer(ThreadedServer):
    """rpyc's ThreadedServer with TCP_NODELAY on each accepted socket.

    Without it, Nagle's algorithm holds back the small reply packets until the client's delayed ACK
    arrives: about 40 ms per call on Linux, which capped the camera at ~25 frames/s on loopback.
    """

    def _accept_method(self, sock):
        """Switch off Nagle for this client, then serve it in its own thread as usual."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super()._accept_method(sock)

    def _handle_connection(self, conn):
        """Serve one client; a message this rpyc cannot parse ends that client with one line, not a
        traceback. It is almost always a client on rpyc 6, whose wire format differs from rpyc 5's."""
        try:
            conn.serve_all()
        except Exception as e:  # noqa: BLE001 - errors of exposed methods go to the client, not here
            version = ".".join(str(v) for v in rpyc.version.version)
            print(
                f"error: a client sent a message this server cannot parse ({type(e).__name__}: {e}); "
                f"rpyc version mismatch? this server runs rpyc {version}: use rpyc 5.x on both ends",
                file=sys.stderr,
            )


def make_server(service, host, port):
    """A threaded RPyC server for ``service`` with everything but the exposed methods switched off."""
    config = {
        "allow_public_attrs": False,
        "allow_all_attrs": False,
        "allow_setattr": False,
        "allow_delattr": False,
        "allow_pickle": False,
        "sync_request_timeout": 10,
    }
    return NoDelayThreadedServer(service, hostname=host, port=port, protocol_config=config)


class ServerStop(Exception):
    """Raised in the main thread by a signal handler: leave the accept loop, stop the motors, exit."""


def _on_signal(signum, frame):
    """SIGINT, SIGTERM or SIGHUP: end the server the same way for all three (motors off, exit 0)."""
    raise ServerStop(signal.Signals(signum).name)


def serve(service, host, port, name):
    """Serve until SIGINT (Ctrl-C), SIGTERM or SIGHUP, then stop the motors and return.

    Prints one line with the real address first (port 0 picks a free one) and one line at the end.
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        server = make_server(service, host, port)
    except OSError as e:
        service.shutdown()
        print(f"error: cannot listen on {host}:{port} ({e})", file=sys.stderr)
        sys.exit(2)
    server._listen()  # listen before announcing, so a client that reads the line can connect at once
    print(f"{name} listening on {host}:{server.port}")
    sys.stdout.flush()
    why = "server closed"
    try:
        server.start()
    except ServerStop as e:
        why = f"{e} received"
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the shutdown short
        server.close()
        service.shutdown(why)


def main():
    """Parse flags, take the camera and motors, serve."""
    parser = argparse.ArgumentParser(description="Serve the JetBot's camera and motors over RPyC.")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; on the robot use 0.0.0.0 (every interface)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (0 picks a free one)")
    parser.add_argument("--width", type=int, default=224, help="camera frame width")
    parser.add_argument("--height", type=int, default=224, help="camera frame height")
    parser.add_argument("--jpeg-quality", type=int, default=80, help="JPEG quality 1-100")
    args = parser.parse_args()
    if not 1 <= args.jpeg_quality <= 100 or args.width < 16 or args.height < 16:
        parser.error("--jpeg-quality must be in 1..100 and the frame at least 16x16")
    try:
        hardware = JetBotHardware(args.width, args.height)
    except ImportError:
        print("error: the 'jetbot' package is not installed: run this script on the JetBot", file=sys.stderr)
        sys.exit(2)
    serve(JetBotService(hardware, jpeg_quality=args.jpeg_quality), args.host, args.port, "JetBot server")


if __name__ == "__main__":
    main()
