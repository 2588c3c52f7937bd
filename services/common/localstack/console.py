"""Output of `wuguan run` that never stops the shutdown.

With `wuguan run | head -5` (or `| tee log` and Ctrl-C), the reader goes away before the
supervisor has stopped the stack; a print to the closed pipe raises, and an exception there
would skip stopping the workers, the broker and Postgres. Writes to a closed pipe are dropped
instead, and standard output is pointed at /dev/null so the interpreter's last flush is quiet.
"""
from __future__ import annotations

import errno
import os
import sys

from rich.console import Console


class PipeSafeFile:
    """A text file wrapper whose writes stop, silently, once the reader has gone."""

    def __init__(self, stream):
        self.stream = stream
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        if self.closed_by_reader:
            return len(text)
        try:
            written = self.stream.write(text)
            self.stream.flush()
            return written
        except (BrokenPipeError, ValueError):
            self._reader_gone()
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.EBADF):
                raise
            self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._reader_gone()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        try:
            return self.stream.isatty()
        except (ValueError, OSError):
            return False

    def fileno(self) -> int:
        return self.stream.fileno()

    def _reader_gone(self) -> None:
        self.closed_by_reader = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


def pipe_safe_console() -> Console:
    """A rich console on standard output that survives its reader going away."""
    return Console(file=PipeSafeFile(sys.stdout), highlight=False, soft_wrap=False)
