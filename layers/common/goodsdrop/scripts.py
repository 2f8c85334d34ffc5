"""The Lua scripts of `lua/`, registered once per process.

redis-py's `Script` calls EVALSHA and reloads the script after NOSCRIPT (e.g. after a Redis
restart), so callers just call the script object. On Redis Cluster the client sends EVALSHA to
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


class SlotCheckedScript(Script):
    """A registered script that refuses, before sending anything, keys spread over several slots."""

    def __init__(self, registered_client: Any, text: str, name: str) -> None:
        super().__init__(registered_client, text)
        self.name = name

    def __call__(self, keys: Sequence[str] | None = None, args: Iterable[Any] | None = None,
                 client: Any = None) -> Any:
        if keys and len(slots_of(keys)) > 1:
            raise CrossSlotKeys(f"lua/{self.name}.lua was called with keys of several cluster slots: {list(keys)}")
        return super().__call__(keys=keys, args=args, client=client)


@cache
def script(name: str) -> Script:
    """The registered script `lua/<name>.lua` on the shared Redis client."""
    if settings.check_script_slots:
        return SlotCheckedScript(redis_client(), source(name), name)
    return redis_client().register_script(source(name))
