"""Every release the saga makes holds the order's ledger row OPEN, so it may undo a sale made in Redis.

A saga release that did not pass `undo_sale=True` would be refused on a hold a crashed confirmation
had sold in Redis (its MySQL transaction rolled back): the units would stay out of Redis for good.
The hot path's releases (goodsdrop.reservations.release_order, takes) must not pass it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import goodsdrop.saga

SAGA = Path(goodsdrop.saga.__file__)


def _releases() -> list[ast.Call]:
    calls = []
    for node in ast.walk(ast.parse(SAGA.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "settle"
                and any(isinstance(a, ast.Attribute) and a.attr == "RELEASED" for a in node.args)):
            calls.append(node)
    return calls


def test_the_saga_releases_under_the_ledger_lock_and_say_so():
    releases = _releases()
    assert len(releases) >= 4  # compensation, expiry (twice), a buyer's cancel of a pending order
    for call in releases:
        flags = {k.arg: k.value for k in call.keywords}
        assert isinstance(flags.get("undo_sale"), ast.Constant) and flags["undo_sale"].value is True, \
            f"saga.py line {call.lineno}: a release under the ledger lock passes undo_sale=True"


def test_the_hot_path_releases_never_undo_a_sale():
    from goodsdrop.reservations import claim, settlement, takes

    for module in (claim, settlement, takes):
        assert "undo_sale=True" not in Path(module.__file__).read_text(), module.__name__
