"""Shared fixtures of the pure tests: a real Mosquitto broker on a free loopback port."""

from __future__ import annotations

import pytest

from prepaid_core.simulator.broker import MOSQUITTO_INSTALL_HINT, find_mosquitto, start_mosquitto


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory):
    """A real Mosquitto on 127.0.0.1:<free port> (persistence on, ``max_queued_messages 0``);
    yields a ``Broker`` (``host``, ``port``) and stops it at the end of the session.

    Fails (does not skip) when mosquitto is not installed: the MQTT tests are part of
    the suite, and a green run without a broker would prove nothing.
    """
    if find_mosquitto() is None:
        pytest.fail(MOSQUITTO_INSTALL_HINT, pytrace=False)
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker
    finally:
        broker.stop()
