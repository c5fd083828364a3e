"""Simulated Modbus-RTU meters on a local serial device (G7): a pseudo-terminal whose
other end the meters answer, so that a bus driver reaches them by a device path as it
would an RS-485 adapter.  A pseudo-terminal takes 8N1 only (Modbus-RTU's usual line;
DL/T645's 8E1 is refused)."""

from __future__ import annotations

import os
import pty
import threading

from prepaid_core.protocols import modbus
from prepaid_core.simulator.collector import ModbusResponder

__all__ = ["SerialBus"]


class SerialBus:
    """``with SerialBus(responders) as bus``: ``bus.device`` is the path to open."""

    def __init__(self, responders: list[ModbusResponder]):
        self.responders = responders
        self.device = ""
        self._fds: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SerialBus:
        master, slave = pty.openpty()
        self._fds = (master, slave)
        self.device = os.ttyname(slave)
        self._thread = threading.Thread(target=self._serve, args=(master,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        master, slave = self._fds
        os.close(slave)  # the other end reads an error and the thread ends
        self._thread.join(5)
        os.close(master)

    def _serve(self, master: int) -> None:
        buffer = b""
        while True:
            try:
                buffer += os.read(master, 4096)
            except OSError:
                return
            used, frame = modbus.decode_frame(buffer, server=True)
            buffer = buffer[used:]
            if frame is not None:
                os.write(master, self._answer(frame))

    def _answer(self, frame: bytes) -> bytes:
        """The reply of the one meter the request is for (silence otherwise)."""
        replies = [reply for reply in (r.answer(frame) for r in self.responders) if reply]
        return replies[0] if len(replies) == 1 else b""
