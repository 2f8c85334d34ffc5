"""The Lua scripts of `lua/`, registered once per process.

redis-py's `Script` calls EVALSHA and reloads the script after NOSCRIPT (e.g. after a Redis
restart), so callers just call the script object.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from redis.commands.core import Script

from goodsdrop.clients import redis_client


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


@cache
def script(name: str) -> Script:
    """The registered script `lua/<name>.lua` on the shared Redis client."""
    return redis_client().register_script(source(name))
