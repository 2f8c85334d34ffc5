"""The local runtime as a server of the stack (`python -m goodsdrop_local serve`), restarted when its code changed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from goodsdrop.settings import settings
from goodsdrop_local.stack.server import HOST, PID_DIR, PYTHON, ROOT, Server, http_ok


class LocalRuntime(Server):
    """The local runtime (API Gateway + Lambda + Kafka mappings + SSE emulation)."""

    name = "runtime"
    marker = "goodsdrop_local"
    start_timeout = 60.0

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.api_port, settings.stream_port)

    @property
    def address(self) -> str:
        return f"http://{HOST}:{settings.api_port} (stream :{settings.stream_port})"

    # What the runtime loads once and keeps: a change here means a running runtime serves old code.
    CODE = ("functions", "layers/common", "lua", "local/goodsdrop_local", "containers", "infra/template.yaml",
            "tests/support/faults.py")
    # What the runtime reads from the environment at start and acts on (a runtime started without
    # the tests' checkpoint observer is restarted with it, and the other way round).
    ENVIRONMENT = ("GOODSDROP_CHECKPOINT_OBSERVER",)

    def command(self) -> list[str]:
        return [PYTHON, "-m", "goodsdrop_local", "serve"]

    def healthy(self) -> bool:
        return http_ok(f"http://{HOST}:{settings.api_port}/health")

    @property
    def code_path(self) -> Path:
        return PID_DIR / f"{self.name}.code"

    def code_fingerprint(self) -> str:
        """A digest of the names, sizes and mtimes of the files the runtime serves, and of `ENVIRONMENT`."""
        digest = hashlib.sha256()
        for top in self.CODE:
            root = ROOT / top
            for path in sorted([root] if root.is_file() else root.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    stat = path.stat()
                    digest.update(f"{path.relative_to(ROOT)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        for name in self.ENVIRONMENT:
            digest.update(f"${name}={os.environ.get(name, '')}\n".encode())
        return digest.hexdigest()

    def start(self) -> str:
        """Start the runtime; one that serves older code than the checkout's (a pull, an edit) is restarted."""
        fingerprint = self.code_fingerprint()
        stale = self.running_pid() is not None and (not self.code_path.exists() or
            self.code_path.read_text().strip() != fingerprint)
        if stale:
            self.stop()
        state = super().start()
        self.code_path.write_text(fingerprint + "\n")
        return "restarted: the code changed" if stale else state

