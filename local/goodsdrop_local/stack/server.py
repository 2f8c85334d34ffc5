"""Where the local stack lives, and one of its servers as a detached process (`Server`).

Everything lives under ``.stack/`` at the repository root (``GOODSDROP_STACK_DIR`` overrides it):
a data directory per server, ``logs/<server>.log`` and ``pids/<server>.pid``. Each server runs
detached in its own session, so ``down`` stops it together with whatever it spawned. Every
process started here carries ``GOODSDROP_STACK_OWNER=<stack dir>`` in its environment, which
lets ``down`` find stragglers whose pid file was lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STACK_DIR = Path(os.environ.get("GOODSDROP_STACK_DIR", str(ROOT / ".stack"))).resolve()
LOG_DIR = STACK_DIR / "logs"
PID_DIR = STACK_DIR / "pids"
STACK_MARK = STACK_DIR / ".goodsdrop-stack"  # proves a directory is ours before `reset` empties it
OWNER_ENV = "GOODSDROP_STACK_OWNER"
HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 20.0
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


class StackError(RuntimeError):
    """A server could not be prepared, started or stopped; the message says where to look."""


# --------------------------------------------------------------------------- process helpers


def port_open(port: int, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=timeout):
        return True
    return False


def _proc_file(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def alive(pid: int, marker: str = "") -> bool:
    """Whether pid runs (not a zombie) and, where /proc tells, its command line contains marker."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_file(pid, "stat")
    if stat is None:  # no /proc (macOS): trust kill(0)
        return True
    if stat.rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap our own child
        return False
    cmdline = (_proc_file(pid, "cmdline") or b"").replace(b"\0", b" ")
    return marker.encode() in cmdline


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group remains (our own exited children are reaped first)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*")] if Path("/proc").is_dir() else []


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def stop_group(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group led by pid, wait up to grace seconds, then SIGKILL it."""
    pgid = _pgid(pid)
    if pgid is None:
        return
    if pgid == os.getpgrp():  # never signal our own group: stop the process alone
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.1)
    raise StackError(f"process group {pgid} survived SIGKILL")


def _own_ancestry() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        stat = _proc_file(pid, "stat")
        if stat is None:
            break
        pid = int(stat.rsplit(b")", 1)[-1].split()[2])
    return pids


def stray_pids() -> list[int]:
    """Processes started by this stack (marked in their environment) that are still running."""
    mark = f"{OWNER_ENV}={STACK_DIR}".encode()
    mine = _own_ancestry()
    strays = []
    for pid in _all_pids():
        environ = _proc_file(pid, "environ")
        if pid not in mine and environ and mark in environ.split(b"\0") and alive(pid):
            strays.append(pid)
    return strays


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("    " + line for line in text)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "layers" / "common"), str(ROOT / "local"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env.update({OWNER_ENV: str(STACK_DIR), "PYTHONPATH": os.pathsep.join(paths)})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def which(*names: str, extra_dirs: tuple[str, ...] = ("/usr/sbin", "/usr/local/sbin")) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(extra_dirs))
        if found:
            return found
    raise StackError(f"{' / '.join(names)} not found; run `make install`")


def run_logged(cmd: list[str], log_path: Path, what: str) -> None:
    """Run a one-off setup command, output appended to log_path; raise with its tail on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%F %T')} {what}: {' '.join(cmd)}\n".encode())
        log.flush()
        result = subprocess.run(
            cmd, check=False, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}); see {log_path}\n{tail(log_path)}")


@contextlib.contextmanager
def stack_lock() -> Iterator[None]:
    """Serialise up/down/reset between processes (e.g. several pytest workers)."""
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    with (STACK_DIR / "stack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)



def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our own http:// URLs
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Server:
    """One detached process of the stack: how to prepare, start, probe and stop it."""

    name = ""
    marker = ""  # found in the process's command line; guards against a recycled pid
    start_timeout = 30.0

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports it listens on (checked free before starting)."""
        raise NotImplementedError

    @property
    def address(self) -> str:
        """Where clients reach it, for the summary."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """The command line that runs it in the foreground."""
        raise NotImplementedError

    def healthy(self) -> bool:
        """Whether it answers a real request."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Set-up before a start: data directories, config files, first-time initialisation."""

    def after_start(self) -> None:
        """Work done on every `up` once it is healthy (e.g. ensuring users)."""

    @property
    def log_path(self) -> Path:
        return LOG_DIR / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return PID_DIR / f"{self.name}.pid"

    def running_pid(self) -> int | None:
        """The pid from the pid file if that process is alive; a stale pid file is removed."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            self.pid_path.unlink(missing_ok=True)
            return None
        if alive(pid, self.marker):
            return pid
        self.pid_path.unlink(missing_ok=True)
        return None

    def is_up(self) -> bool:
        """Running from our pid file and answering."""
        return self.running_pid() is not None and self._probe()

    def _probe(self) -> bool:
        try:
            return self.healthy()
        except Exception:  # noqa: BLE001 - any failure to answer means "not healthy yet"
            return False

    def start(self) -> str:
        """Start it unless it already runs; wait until healthy. Returns a word on what happened."""
        t0 = time.monotonic()
        pid = self.running_pid()
        if pid is not None:
            self._wait_healthy(pid, None, t0)
            self.after_start()
            return "already running"
        busy = [port for port in self.ports if port_open(port)]
        if busy:
            raise StackError(
                f"{self.name}: port {busy[0]} is already taken by a process this stack did not "
                "start; stop it or set GOODSDROP_PORT_OFFSET"
            )
        self.prepare()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        PID_DIR.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} start: {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=STACK_DIR,
                env=child_env(),
                start_new_session=True,
            )
        self.pid_path.write_text(f"{proc.pid}\n")
        self._wait_healthy(proc.pid, proc, t0)
        self.after_start()
        return f"started in {time.monotonic() - t0:.1f} s"

    def _wait_healthy(self, pid: int, proc: subprocess.Popen[bytes] | None, t0: float) -> None:
        deadline = t0 + self.start_timeout
        while not self._probe():
            exited = proc.poll() is not None if proc else not alive(pid, self.marker)
            if exited:
                code = f" with code {proc.returncode}" if proc else ""
                self.pid_path.unlink(missing_ok=True)
                raise StackError(
                    f"{self.name} exited{code} while starting; see {self.log_path}\n"
                    f"{tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name} did not become healthy within {self.start_timeout:.0f} s; "
                    f"see {self.log_path}\n{tail(self.log_path)}"
                )
            time.sleep(0.2)

    def stop(self) -> bool:
        """Stop it (and its process group) if running; remove the pid file. True if it ran."""
        pid = self.running_pid()
        if pid is not None:
            stop_group(pid)
        self.pid_path.unlink(missing_ok=True)
        return pid is not None

