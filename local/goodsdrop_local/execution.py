"""Warm Lambda execution environments for the functions of the template.

Like Lambda, a function's module is imported once per process (its init code runs once: clients
built at module level are reused) and its handler is called once per event. The template's
Timeout is enforced with a real-time timer, as Lambda stops a function that runs too long.

`ProcessEnvironment` is one environment in a process of its own, running one invocation at a
time: the Kafka pollers invoke several partitions at once, each in its own environment, as Lambda
does. They are forked from a forkserver that has the heavy third-party libraries imported already
(nothing of the product, so each environment reads its settings with its function's environment).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from chalice.local import LambdaContext

from goodsdrop_local.template import Function


class FunctionError(Exception):
    """The function raised, like Lambda's `FunctionError: Unhandled` result."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.error_message = message


class FunctionTimeout(FunctionError):
    """The function ran longer than its Timeout."""


class _TimedOut(BaseException):
    """Raised inside the handler by the timer; BaseException so handler code can't swallow it."""


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise _TimedOut()


_applied_env: dict[str, str] | None = None

# Names `module:function`, an observer of the layer's checkpoints (goodsdrop.checkpoints) that the
# tests use to inject faults (tests/support/faults.py). Unset, as always outside tests: none, as on AWS.
CHECKPOINT_OBSERVER_ENV = "GOODSDROP_CHECKPOINT_OBSERVER"
_installed_observer: str | None = None


def install_checkpoint_observer() -> None:
    """Register the checkpoint observer `GOODSDROP_CHECKPOINT_OBSERVER` names, if any (once per process)."""
    global _installed_observer
    wanted = os.environ.get(CHECKPOINT_OBSERVER_ENV, "")
    if not wanted or wanted == _installed_observer:
        return
    from goodsdrop import checkpoints

    module_name, _, function_name = wanted.partition(":")
    checkpoints.observe(getattr(importlib.import_module(module_name), function_name))
    _installed_observer = wanted


def _apply_environment(env: dict[str, str]) -> None:
    """Make `env` this process's environment for the function (cheap when already applied)."""
    global _applied_env
    if _applied_env is env:
        return
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    _applied_env = env


class WarmFunction:
    """One function's warm execution environment in this process."""

    def __init__(self, spec: Function) -> None:
        self.spec = spec
        self._handler: Callable[[Any, Any], Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> Callable[[Any, Any], Any]:
        for layer in self.spec.layer_dirs:
            if str(layer) not in sys.path:
                sys.path.insert(0, str(layer))
        _apply_environment(self.spec.environment)
        install_checkpoint_observer()
        module_name = f"goodsdrop_fn_{self.spec.logical_id}"
        spec = importlib.util.spec_from_file_location(module_name, self.spec.module_file)
        if spec is None or spec.loader is None:
            raise FunctionError("Runtime.ImportModuleError", f"cannot load {self.spec.module_file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return getattr(module, self.spec.handler_name)

    @property
    def handler(self) -> Callable[[Any, Any], Any]:
        if self._handler is None:
            with self._lock:
                if self._handler is None:
                    self._handler = self._load()
        return self._handler

    def invoke(self, event: Any) -> Any:
        """Call the handler with `event` and a Lambda context; raise `FunctionError` if it fails."""
        handler = self.handler
        _apply_environment(self.spec.environment)
        context = LambdaContext(self.spec.logical_id, self.spec.memory, int(self.spec.timeout * 1000))
        timed = threading.current_thread() is threading.main_thread()
        if timed:
            previous = signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.spec.timeout)
        started = time.monotonic()
        try:
            return handler(event, context)
        except _TimedOut:
            raise FunctionTimeout("Sandbox.Timedout",
                                  f"Task timed out after {time.monotonic() - started:.2f} seconds") from None
        except FunctionError:
            raise
        except Exception as err:
            raise FunctionError(type(err).__name__, str(err)) from err
        finally:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)


class FunctionPool:
    """The warm environments of one process, created on first use."""

    def __init__(self, functions: dict[str, Function]) -> None:
        self._specs = functions
        self._warm: dict[str, WarmFunction] = {}

    def get(self, logical_id: str) -> WarmFunction:
        warm = self._warm.get(logical_id)
        if warm is None:
            warm = self._warm[logical_id] = WarmFunction(self._specs[logical_id])
        return warm

    def warm_up(self, logical_ids: list[str]) -> None:
        """Import these functions now (like provisioned concurrency), so the first request is warm."""
        for logical_id in logical_ids:
            _ = self.get(logical_id).handler


# Imported once by the forkserver, so a new environment starts warm in a fraction of a second.
PRELOAD = ["kafka", "redis", "pymysql", "pydantic", "aws_lambda_powertools.utilities.batch",
           "aws_lambda_powertools.logging", "goodsdrop_local.execution"]


def _environment_context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def serve_environment(spec: Function, conn: Connection, environ: dict[str, str]) -> None:
    """An environment's process: import the function once, then run one invocation at a time until told to go."""
    # The forkserver's environment is from when it started: take the owner's of now.
    os.environ.clear()
    os.environ.update(environ)
    # Its owner decides when it stops (after the invocation in flight).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    function = WarmFunction(spec)
    init_error: tuple[str, str] | None = None
    try:
        function.handler  # noqa: B018 - the init phase, like Lambda's
    except FunctionError as err:
        init_error = (err.error_type, err.error_message)
    except Exception as err:  # noqa: BLE001 - an import failure is every invocation's error
        init_error = ("Runtime.ImportModuleError", f"{type(err).__name__}: {err}")
    while True:
        try:
            event = conn.recv()
        except (EOFError, OSError):
            return
        if init_error is not None:
            conn.send(("error", *init_error))
            continue
        try:
            conn.send(("ok", function.invoke(event)))
        except FunctionError as err:
            conn.send(("error", err.error_type, err.error_message))


class ProcessEnvironment:
    """One warm execution environment in a process of its own, running one invocation at a time."""

    def __init__(self, spec: Function) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = _environment_context().Process(target=serve_environment, args=(spec, child, dict(os.environ)),
                                                       daemon=True, name=f"lambda-{spec.logical_id}")
        self.process.start()
        child.close()
        self.timeout = spec.timeout
        self.started: float | None = None  # monotonic start of the invocation in flight
        self.owner: Any = None  # who waits for the invocation in flight

    def invoke(self, event: Any, owner: Any) -> None:
        """Start an invocation; `result` gives its outcome once `conn` is readable."""
        self.conn.send(event)
        self.started, self.owner = time.monotonic(), owner

    @property
    def overdue(self) -> bool:
        """Still running long after its Timeout (its own timer failed to stop it)."""
        return self.started is not None and time.monotonic() - self.started > self.timeout + 5

    def result(self) -> tuple[Any, ...]:
        """The finished invocation's ("ok", response) or ("error", type, message)."""
        self.started = None
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.process.join(1)
            return ("error", "Runtime.ExitError", f"the execution environment exited (status {self.process.exitcode})")

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self, wait_seconds: float = 5.0) -> None:
        """Let it finish its invocation and exit (it sees the pipe close); killed if it takes longer."""
        self.conn.close()
        self.process.join(wait_seconds)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)
