"""Ctrl-C and SIGTERM while a sweep is driven: one KeyboardInterrupt, where the driver is, never half-way through
recording something.

Example::

    with Interrupts() as interrupts:
        with interrupts.deferred():   # a run created and kept: an interrupt waits for the block to end
            ...
        with interrupts.quiet():      # the cleanup after an interrupt: more signals are noted and ignored
            ...
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C or SIGTERM before its first trial; the runs it had opened are KILLED.

    Attributes:
        execution_run_id: the execution it was driving (resume it with ``resume=True``), or None when nothing
            was recorded.
    """

    def __init__(self, execution_run_id: str | None) -> None:
        super().__init__(execution_run_id)
        self.execution_run_id = execution_run_id


class Interrupts:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, while this context is entered.

    Inside :meth:`deferred` the interrupt is held until the (outermost) block ends; inside :meth:`quiet`, the
    cleanup after an interrupt, further signals are ignored, so a second Ctrl-C cannot leave runs half-ended.
    Off the main thread Python delivers no signals, and this does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.previous: dict[int, object] = {}
        self.received: int | None = None
        self._depth = 0
        self._silenced = 0
        self._pending = False

    def __enter__(self) -> Interrupts:
        self.install()
        return self

    def __exit__(self, *exc) -> bool:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()
        return False

    def install(self) -> None:
        """Installs the handlers, again after a library replaced one (``ray.init`` sets its own SIGTERM's)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            current = signal.getsignal(signum)
            if current != self._handle:
                self.previous.setdefault(signum, current)
                signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = signum
        if self._silenced:
            return
        if self._depth:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A block that an interrupt does not split: it is raised when the block ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending and not self._silenced:
            self._pending = False
            raise KeyboardInterrupt

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """The cleanup after an interrupt or an error: signals are noted, not raised."""
        self._silenced += 1
        self._pending = False
        try:
            yield
        finally:
            self._silenced -= 1
