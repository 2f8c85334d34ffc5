"""The Lua scripts' header comments and goodsdrop.codes agree: every `Class.NAME = value` a header
names is that constant with that value, and every constant of the scripts' enums is named by one."""

from __future__ import annotations

import re
from enum import Enum

import pytest

from goodsdrop import codes
from goodsdrop_local.template import REPO_ROOT

LUA = sorted((REPO_ROOT / "lua").glob("*.lua"))
# The enums of values that pass between Python and the scripts (the others are stored statuses too,
# but the scripts need not name all of them).
SCRIPT_ENUMS = (codes.TakeCode, codes.SettleCode, codes.ShiftCode, codes.RebuildCode, codes.CartLineCode,
                codes.CartLineChange, codes.ClaimAnswer, codes.SettleTarget, codes.HeldChange)
NAMED = re.compile(r"\b([A-Z][A-Za-z]+)\.([A-Z][A-Z0-9_]*)\s*=\s*(-?\d+|'[^']*')")


def header(path) -> str:
    """The comment block a script opens with."""
    lines = path.read_text().splitlines()
    return "\n".join(line[2:] for line in lines[:next(i for i, ln in enumerate(lines) if not ln.startswith("--"))])


def named_constants() -> list[tuple[str, str, str, str]]:
    """(script, class, name, literal) for every `Class.NAME = value` in every header."""
    return [(path.name, *match.groups()) for path in LUA for match in NAMED.finditer(header(path))]


@pytest.mark.parametrize(("script", "cls", "name", "literal"), named_constants())
def test_every_constant_a_header_names_is_goodsdrops_with_that_value(script, cls, name, literal):
    enum = getattr(codes, cls, None)
    assert isinstance(enum, type) and issubclass(enum, Enum), f"{script}: goodsdrop.codes has no {cls}"
    assert name in enum.__members__, f"{script}: {cls} has no {name}"
    value = int(literal) if literal.lstrip("-").isdigit() else literal.strip("'")
    assert enum[name].value == value, f"{script}: {cls}.{name} is {enum[name].value!r}, the header says {value!r}"


@pytest.mark.parametrize("enum", SCRIPT_ENUMS, ids=lambda e: e.__name__)
def test_every_constant_the_scripts_exchange_is_named_in_a_header(enum):
    named = {(cls, name) for _, cls, name, _ in named_constants()}
    missing = [member.name for member in enum if (enum.__name__, member.name) not in named]
    assert not missing, f"no lua/ header names {enum.__name__}.{missing}"


def test_the_headers_name_constants_at_all():
    # A changed header format must not make the tests above pass vacuously.
    assert len(named_constants()) >= 25
    assert {script for script, *_ in named_constants()} >= {"take_units.lua", "settle_hold.lua", "claim_order.lua",
                                                            "change_cart_line.lua", "load_stock.lua"}
