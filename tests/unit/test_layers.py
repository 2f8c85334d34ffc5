"""Imports point one way: handlers -> the HTTP edge -> the domain -> adapters -> values.

The layers are the import-linter contract in pyproject.toml (`make lint` runs `lint-imports` on
it); this test reads the same contract and checks every import of the layer itself, function-level
imports included, so a reversed arrow fails `make test-unit` too, and a new module of the layer
must be given its place.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "common" / "goodsdrop"
HANDLERS = ROOT / "functions"
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
LAYERS_CONTRACT = next(c for c in CONTRACTS if c["type"] == "layers" and c.get("containers") == ["goodsdrop"])
FORBIDDEN_CONTRACT = next(c for c in CONTRACTS if c["type"] == "forbidden" and c["source_modules"] == ["goodsdrop"])


def layer_of() -> dict[str, int]:
    """Each module of goodsdrop named in the contract -> its layer (0 is the top)."""
    placed: dict[str, int] = {}
    for index, layer in enumerate(LAYERS_CONTRACT["layers"]):
        for name in layer.replace("|", ":").split(":"):
            assert name.strip() not in placed, f"{name.strip()} is in two layers"
            placed[name.strip()] = index
    return placed


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """Every module `source` (the text of `module`) imports, as (line, absolute name); function-level
    imports included."""
    found: list[tuple[int, str]] = []
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from goodsdrop import http` imports the module goodsdrop.http
            found.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names if name == "goodsdrop")
    return found


def reversed_arrows(source: str, module: str, placed: dict[str, int]) -> list[str]:
    """The imports of `module` that point up a layer, or out of the layer (local runtime, tests...)."""
    own = module.split(".")[1]
    problems = []
    for line, name in imported_modules(source, module):
        top = name.split(".")[0]
        if top in FORBIDDEN_CONTRACT["forbidden_modules"]:
            problems.append(f"{module}:{line} imports {name}, which the layer does not ship")
        elif top == "goodsdrop" and "." in name:
            target = name.split(".")[1]
            if target in placed and target != own and placed[target] < placed[own]:
                problems.append(f"{module}:{line} imports {name}, a layer above it")
    return problems


def layer_modules() -> dict[str, Path]:
    """Every module of the layer (goodsdrop.x.y) -> its file."""
    found = {}
    for path in sorted(LAYER.rglob("*.py")):
        parts = path.relative_to(LAYER.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def test_every_module_of_the_layer_has_its_place():
    placed = layer_of()
    tops = {name.split(".")[1] for name in layer_modules() if "." in name}
    assert sorted(tops - set(placed)) == [], "place new modules in pyproject's [tool.importlinter] layers"
    assert sorted(set(placed) - tops) == [], "the contract names modules that do not exist"


def test_the_layer_imports_point_down_only():
    placed = layer_of()
    problems = []
    for module, path in layer_modules().items():
        if module != "goodsdrop":
            problems += reversed_arrows(path.read_text(), module, placed)
    assert problems == []


def test_handlers_reach_the_layer_only():
    problems = []
    for path in sorted(HANDLERS.rglob("*.py")):
        for line, name in imported_modules(path.read_text(), "handler"):
            if name.split(".")[0] in FORBIDDEN_CONTRACT["forbidden_modules"]:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert problems == []


@pytest.mark.parametrize("source", [
    "from goodsdrop.http import make_resolver\n",
    "from goodsdrop import http\n",
    "def late():\n    import goodsdrop.http\n",
    "from .http import make_resolver\n",
])
def test_a_domain_module_importing_the_http_edge_is_caught(source):
    assert reversed_arrows(source, "goodsdrop.orders", layer_of()) != []


@pytest.mark.parametrize("source", [
    "from goodsdrop.orders import place_order\n",  # values -> domain
    "from tests.support.accounts import new_account\n",
    "from goodsdrop_local import gateway\n",
])
def test_a_value_module_importing_upwards_or_out_is_caught(source):
    assert reversed_arrows(source, "goodsdrop.codes", layer_of()) != []


def test_imports_down_the_layers_pass():
    source = "from goodsdrop.orders import place_order\nfrom goodsdrop.callers import Caller\n"
    assert reversed_arrows(source, "goodsdrop.http", layer_of()) == []


def test_import_linter_keeps_the_contracts():
    linter = str(Path(sys.executable).parent / "lint-imports")
    env = {"PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT / 'local'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([linter, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
