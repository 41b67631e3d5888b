"""A child process of a test whose output is collected, line by line, while it runs."""
import subprocess
import threading
from typing import List, Sequence


class CapturedProcess:
    """``subprocess.Popen(args, **popen)`` with stdout and stderr together, read by a thread into
    ``lines`` (so the child never blocks on a full pipe); ``output`` is all of it so far."""

    def __init__(self, args: Sequence[str], **popen):
        self.process = subprocess.Popen(list(args), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, **popen)
        self.lines = []  # type: List[str]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def join_reader(self, timeout: float = 2.0) -> None:
        """Wait until the output of an ended process has been read."""
        self._reader.join(timeout=timeout)
