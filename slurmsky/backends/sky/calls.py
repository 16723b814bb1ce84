"""SkyPilot calls on daemon threads, a few at once, none of which can hold the agent.

A SkyPilot call may never return (SkyPilot's zip read a FIFO for ever; a request the server
never answers). Each call runs on a daemon thread of its own (a stuck one holds neither the
agent's exit nor, once given up, the calls after it), `threads` at once. `expire` gives up
the calls running longer than a bound: their futures end with CallTimeout (what waits on them
sees a failed call, and retries as it would any failure), and the next calls get fresh slots
while the given-up ones keep theirs. What a given-up call returns, if it ever does, is dropped.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import wait as until


class CallTimeout(Exception):
    """A SkyPilot call given up after running longer than its bound."""


class Calls:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.slots = threading.BoundedSemaphore(threads)
        self.began: dict[Future, float] = {}  # running calls -> when they began
        self.open: set[Future] = set()  # calls not ended (nor given up)

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        self.open.add(future)

        def run() -> None:
            slots = self.slots
            while not slots.acquire(timeout=1):  # renewed meanwhile: the new slots
                slots = self.slots
            try:
                if future.set_running_or_notify_cancel():
                    self.began[future] = time.monotonic()
                    try:
                        result = fn(*args)
                    except BaseException as exc:
                        _settle(future.set_exception, exc)
                    else:
                        _settle(future.set_result, result)
            finally:
                self.began.pop(future, None)
                self.open.discard(future)
                slots.release()

        threading.Thread(target=run, name="sky-call", daemon=True).start()
        return future

    def renew(self) -> None:
        """Fresh slots: the calls given up keep theirs."""
        self.slots = threading.BoundedSemaphore(self.threads)

    def expire(self, bound: float, what: str) -> list[Future]:
        """Give up the calls running longer than `bound` s (their futures fail with
        CallTimeout); the ones given up."""
        now = time.monotonic()
        stuck = [f for f, began in list(self.began.items()) if now - began > bound]
        for future in stuck:
            self.began.pop(future, None)
            self.open.discard(future)
            _settle(
                future.set_exception,
                CallTimeout(f"{what}: no answer from SkyPilot in {bound:.0f} s: given up"),
            )
        if stuck:
            self.renew()
        return stuck

    def shutdown(self, wait: bool = True) -> None:
        """Wait (at most a minute) for the calls not ended (tests; the agent exits)."""
        if wait:
            until(list(self.open), timeout=60)


def _settle(setter, value) -> None:
    try:
        setter(value)
    except InvalidStateError:  # given up meanwhile
        pass
