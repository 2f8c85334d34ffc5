"""The Lua scripts of `lua/`, registered once per process.

redis-py's `Script` calls EVALSHA and reloads the script after NOSCRIPT (e.g. after a Redis
restart), so callers just call the script object - alone, or queued on a pipeline with
`client=pipe` (see DropScript). On Redis Cluster the client sends EVALSHA to
the node owning the first key, and a reload (SCRIPT LOAD) goes to every master, so the same
holds there - provided every key of one call hashes to one slot (see goodsdrop.keys).

With `GOODSDROP_CHECK_SCRIPT_SLOTS=1` (the test runs set it) every call first checks that its
KEYS share one cluster slot, so a plain single-Redis test run already catches a key that would
fail with CROSSSLOT on a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from redis.client import Pipeline
from redis.cluster import ClusterPipeline
from redis.commands.core import Script
from redis.crc import key_slot

from goodsdrop.clients import redis_client
from goodsdrop.settings import settings


class CrossSlotKeys(RuntimeError):
    """A script was called with keys of more than one cluster slot (a bug: Redis Cluster refuses it)."""


def _lua_dir() -> Path:
    # In a deployed layer the scripts ship inside the package; in the repository they sit in lua/.
    override = os.environ.get("GOODSDROP_LUA_DIR")
    if override:
        return Path(override)
    packaged = Path(__file__).parent / "lua"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "lua"


def source(name: str) -> str:
    """The text of `lua/<name>.lua`."""
    return (_lua_dir() / f"{name}.lua").read_text()


def slots_of(keys: Iterable[str]) -> set[int]:
    """The Redis Cluster hash slots of these keys (hash tags respected)."""
    return {key_slot(key.encode()) for key in keys}


class DropScript(Script):
    """A registered script that also runs inside a pipeline, on one Redis or a Redis Cluster.

    In a pipeline the script goes as EVAL with its text: never NOSCRIPT, even right after a
    master restarted, and Redis compiles a body once (it caches scripts by their SHA1). redis-py's
    own way (`Script` objects queued on a pipeline) costs a SCRIPT EXISTS round trip before every
    pipeline on one Redis and is refused by its cluster pipeline. Called alone, the script goes as
    EVALSHA and is loaded again after NOSCRIPT. With `check_slots` every call first refuses keys
    spread over several slots (CROSSSLOT on a cluster), before sending anything.
    """

    def __init__(self, registered_client: Any, text: str, name: str, check_slots: bool) -> None:
        super().__init__(registered_client, text)
        self.name = name
        self.check_slots = check_slots

    def __call__(self, keys: Sequence[str] | None = None,  # type: ignore[override]  # GoodsDrop's keys are str
                 args: Iterable[Any] | None = None, client: Any = None) -> Any:
        if self.check_slots and keys and len(slots_of(keys)) > 1:
            raise CrossSlotKeys(f"lua/{self.name}.lua was called with keys of several cluster slots: {list(keys)}")
        if isinstance(client, (Pipeline, ClusterPipeline)):
            keys = list(keys or [])
            return client.execute_command("EVAL", self.script, len(keys), *keys, *(args or []))
        return super().__call__(keys=keys, args=args, client=client)


@cache
def script(name: str) -> Script:
    """The registered script `lua/<name>.lua` on the shared Redis client."""
    return DropScript(redis_client(), source(name), name, settings.check_script_slots)
