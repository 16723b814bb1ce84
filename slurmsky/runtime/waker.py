"""Wake a node's main loop from other threads or from a signal, without lock-in-handler races.

The main thread sleeps in select() on a pipe; threads write a byte to it, and signals reach it
through signal.set_wakeup_fd (the Python-level handler then only sets a flag).
"""

import os
import select
import signal


class Waker:
    def __init__(self):
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def catch(self, signums, handler):
        """Route these signals to handler (run in the main thread) and wake the loop."""
        signal.set_wakeup_fd(self._w)
        for signum in signums:
            signal.signal(signum, handler)

    def wake(self):
        try:
            os.write(self._w, b"\0")
        except BlockingIOError:
            pass  # already full: the loop will wake anyway

    def wait(self, timeout):
        try:
            select.select([self._r], [], [], max(timeout, 0))
        except InterruptedError:
            pass
        try:
            while os.read(self._r, 4096):
                pass
        except BlockingIOError:
            pass
