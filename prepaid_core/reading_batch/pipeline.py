"""M5: Python and PostgreSQL working at the same time on a large batch of readings.

A COPY is fed from an iterator whose chunks a helper thread makes ahead
(:class:`ChunkReader`); a query runs in a helper thread while the caller parses
(:func:`run_meanwhile`); while a large batch is ingested, cyclic garbage collection pauses
and threads are switched more often (:func:`large_batch_mode`).  Why: docs/readings_store.md.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import sys
import threading

#: how often (seconds) the interpreter lets another thread run while a large batch is
#: ingested, instead of Python's 5 ms
SWITCH_INTERVAL = 0.0005
_switches = {"lock": threading.Lock(), "depth": 0, "saved": None}


class ChunkReader:
    """A file for ``COPY .. FROM STDIN`` that pulls its text from an iterator of chunks.

    ``ahead``: from the second chunk on, a helper thread makes the chunks, up to this many
    ahead of PostgreSQL.  The first chunk is made in the caller's thread (the iterator may
    use the database before it); the later ones must not.  :meth:`close` always, once done.
    """

    _END = object()

    def __init__(self, chunks, ahead=0):
        self._chunks = chunks
        self._first = None
        self._queue = self._thread = None
        self._stop = False
        if ahead:
            self._first = next(chunks, "")
            self._queue = queue.Queue(maxsize=ahead)
            self._thread = threading.Thread(
                target=self._produce, name="prepaid-ingest-copy", daemon=True
            )
            self._thread.start()

    def _produce(self):
        try:
            for chunk in self._chunks:
                if self._stop:
                    break
                self._queue.put(chunk)
        except BaseException as exc:  # raised again in the reader's thread
            self._queue.put(exc)
        finally:
            self._queue.put(self._END)

    def read(self, size=-1):
        if self._queue is None:
            return next(self._chunks, "")
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        item = self._queue.get()
        if item is self._END:
            self._queue.put(item)  # every later read ends too
            return ""
        if isinstance(item, BaseException):
            raise item
        return item

    readline = read

    def drain(self):
        """Produce the remaining chunks (every row is judged), sending them nowhere."""
        while self.read():
            pass

    def close(self):
        """Stop producing (if not done) and wait for the helper thread."""
        if self._thread is None:
            return
        self._stop = True
        while self._thread.is_alive():  # unblock it, were the queue full
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        self._thread.join()
        self._thread = None


def run_meanwhile(query, work):
    """Run ``query()`` in a helper thread while ``work()`` runs here; return ``(query's
    result, work's result)`` once both are done, or raise the query's error.  ``work`` must
    not use what ``query`` uses (the transaction's cursor)."""
    failed, fetched = [], []

    def run():
        try:
            fetched.append(query())
        except BaseException as exc:  # raised again in the caller's thread
            failed.append(exc)

    helper = threading.Thread(target=run, name="prepaid-ingest-meters", daemon=True)
    helper.start()
    try:
        result = work()
    finally:
        helper.join()
    if failed:
        raise failed[0]
    return fetched[0], result


@contextlib.contextmanager
def cyclic_gc_paused():
    """No automatic cyclic garbage collection inside: a large batch's rows hold no
    reference cycle, and collections walking them all cost time.  Left alone when collection
    is already off (e.g. another thread's batch)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def quick_thread_switches():
    """The interpreter switches threads every :data:`SWITCH_INTERVAL` inside, so the thread
    feeding COPY gets it back soon after each chunk.  Nested and concurrent batches share one
    setting; the last one out restores it."""
    with _switches["lock"]:
        if not _switches["depth"]:
            _switches["saved"] = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL, _switches["saved"]))
        _switches["depth"] += 1
    try:
        yield
    finally:
        with _switches["lock"]:
            _switches["depth"] -= 1
            if not _switches["depth"]:
                sys.setswitchinterval(_switches["saved"])


@contextlib.contextmanager
def large_batch_mode():
    """:func:`cyclic_gc_paused` and :func:`quick_thread_switches` together."""
    with cyclic_gc_paused(), quick_thread_switches():
        yield
