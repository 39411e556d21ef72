"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM (a scheduler's stop)."""

from __future__ import annotations

import signal
import sys
import threading


class StopOnSignal:
    """SIGINT (Ctrl-C) and SIGTERM ask the run to finish the iteration in progress, checkpoint it
    and stop; a second signal stops at once (KeyboardInterrupt; the last checkpoint is kept).
    Handlers are installed only in the main thread and restored on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, announce: bool):
        self.signum, self.announce, self.previous = 0, announce, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}

    def _handle(self, signum, frame):
        if self.signum:
            self.__exit__()
            raise KeyboardInterrupt
        self.signum = signum
        if self.announce:
            print(f"\n{signal.Signals(signum).name}: finishing the iteration in progress, then saving a checkpoint "
                  "(send it again to stop at once)", file=sys.stderr, flush=True)
