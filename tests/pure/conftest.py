"""Shared fixtures of the pure tests: a real Mosquitto broker on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO_INSTALL_HINT = (
    "mosquitto is required by the MQTT simulator tests (G2, G7) and is not installed: "
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


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    process: subprocess.Popen
    log: Path


def start_mosquitto(directory: Path, port: int | None = None) -> Broker:
    """Start mosquitto with a generated config in ``directory``; wait until it listens."""
    binary = find_mosquitto()
    if binary is None:
        raise FileNotFoundError(MOSQUITTO_INSTALL_HINT)
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "mosquitto.conf"
    log = directory / "mosquitto.log"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {directory}/\n"
        "max_queued_messages 0\n"
        "max_inflight_messages 0\n"
        "log_dest stderr\n"
        "log_type error\n"
        "log_type warning\n"
    )
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=log_file, stderr=subprocess.STDOUT
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


def stop_mosquitto(broker: Broker) -> None:
    broker.process.terminate()
    try:
        broker.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        broker.process.kill()
        broker.process.wait(timeout=5)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    """A real Mosquitto on 127.0.0.1:<free port>; yields a ``Broker`` (host, port).

    Fails (does not skip) when mosquitto is not installed: the MQTT tests are part of
    the suite, and a green run without a broker would prove nothing.
    """
    if find_mosquitto() is None:
        pytest.fail(MOSQUITTO_INSTALL_HINT, pytrace=False)
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker
    finally:
        stop_mosquitto(broker)
