"""API Gateway's stage and method throttling, for the local runtime.

API Gateway keeps one token bucket per throttled method of a stage, shared by every caller: a
request takes a token or is refused with 429 (the THROTTLED gateway response) before the
authorizer or the function runs. The runtime serves the API from several uvicorn worker
processes, so the buckets live in a small file that every worker maps into memory, updated under
an exclusive lock (flock): one bucket per method, whichever worker a request reaches.
"""

from __future__ import annotations

import fcntl
import mmap
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from goodsdrop_local.template import Throttle

_SLOT = struct.Struct("=dd")  # tokens, the moment (time.monotonic()) they were counted


class ThrottleBuckets:
    """The token buckets of a stage's throttled methods: in a shared file, or in this process only."""

    def __init__(self, throttles: dict[tuple[str, str], Throttle], path: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.throttles = throttles
        self.slots = {key: index for index, key in enumerate(sorted(throttles))}
        self.clock = clock
        size = max(1, len(self.slots)) * _SLOT.size
        self._file = None
        self._local_lock = threading.Lock()  # the flock serialises processes; this, the threads of one
        if path is None:
            self._memory: mmap.mmap | bytearray = bytearray(size)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a+b")  # noqa: SIM115 - kept open for the process's life
            if self._file.seek(0, 2) < size:
                self._file.truncate(size)
            self._memory = mmap.mmap(self._file.fileno(), size)

    def take(self, key: tuple[str, str]) -> bool:
        """Take one token from `key`'s bucket; False when it is empty (the request is throttled)."""
        throttle = self.throttles[key]
        offset = self.slots[key] * _SLOT.size
        with self._local_lock:
            if self._file is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
            try:
                now = self.clock()
                tokens, counted_at = _SLOT.unpack_from(self._memory, offset)
                if counted_at <= 0 or counted_at > now:  # never used (or a clock from an earlier boot): full
                    tokens, counted_at = float(throttle.burst), now
                tokens = min(float(throttle.burst), tokens + (now - counted_at) * throttle.rate)
                allowed = tokens >= 1.0
                _SLOT.pack_into(self._memory, offset, tokens - 1.0 if allowed else tokens, now)
                return allowed
            finally:
                if self._file is not None:
                    fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
