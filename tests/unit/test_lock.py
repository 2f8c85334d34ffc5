"""One lock: requirements.txt pins everything requirements.in names (and what it brings), and the
layer's requirements.txt pins its own requirements.in at the very same versions (`make lock`)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, version = line.split("#")[0].strip().partition("==")
            found[canonical(name)] = version
    return found


def named(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-") and (match := NAME.match(line)):
            names.add(canonical(match.group(1)))
    return names


def test_every_requirement_is_pinned_in_the_lock():
    locked = pins(ROOT / "requirements.txt")
    wanted = named(ROOT / "requirements.in") | named(ROOT / "layers/common/requirements.in")
    assert sorted(wanted - set(locked)) == [], "run `make lock`"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in locked.values())


def test_the_layer_ships_the_locked_versions_of_its_own_requirements():
    locked, layer = pins(ROOT / "requirements.txt"), pins(ROOT / "layers/common/requirements.txt")
    assert named(ROOT / "layers/common/requirements.in") <= set(layer)
    assert {name: locked.get(name) for name in layer} == layer
    # Only what the layer needs: none of the local runtime's or the tools' packages.
    assert not {"boto3", "moto", "pytest", "chalice", "uvicorn"} & set(layer)
