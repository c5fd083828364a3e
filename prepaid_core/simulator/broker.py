"""Start a private Mosquitto broker (tests, benchmarks, demo); Debian's ``mosquitto``.

Mosquitto 2.0 keeps only ``max_queued_messages`` (default 1000) per offline persistent
session and silently drops the rest, so the generated configuration sets it to 0 (no
limit); a listener declared in 2.x needs ``allow_anonymous true``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MOSQUITTO_INSTALL_HINT", "Broker", "find_mosquitto", "free_port", "start_mosquitto"]

MOSQUITTO_INSTALL_HINT = (
    "mosquitto is required (MQTT meters, G2/G7) and is not installed: "
    "run `apt-get install -y mosquitto` (Debian package, /usr/sbin/mosquitto)"
)


def find_mosquitto() -> str | None:
    for candidate in ("/usr/sbin/mosquitto", shutil.which("mosquitto")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen
    log: Path

    def __iter__(self):
        """``host, port = broker``."""
        return iter((self.host, self.port))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_mosquitto(directory: Path, port: int | None = None, *, persistence=True) -> Broker:
    """Start mosquitto with a generated config in ``directory``; wait until it listens.

    Without ``port`` a free loopback port is chosen (tried again with another port if
    something took it in between).
    """
    if port is not None:
        return _start(directory, port, persistence)
    for attempt in range(3):
        try:
            return _start(directory, free_port(), persistence)
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _start(directory: Path, port: int, persistence: bool) -> Broker:
    binary = find_mosquitto()
    if binary is None:
        raise FileNotFoundError(MOSQUITTO_INSTALL_HINT)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "mosquitto.conf"
    log = directory / "mosquitto.log"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"persistence {'true' if persistence else 'false'}\n"
        f"persistence_location {directory}/\n"
        "max_queued_messages 0\n"
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
    )
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [binary, "-c", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Ctrl-C in a terminal goes to the whole process group: the broker is stopped
            # by its owner, last, after the clients that still talk to it
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Broker("127.0.0.1", port, process, log)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("mosquitto did not start listening within 10 s")
