"""`sam build` (no container) produces deployable artifacts: every function's code, and the common
layer with its requirements for Lambda's platform, the goodsdrop package and the Lua scripts at
goodsdrop/lua/; and the layer really serves the handlers: built for this host's platform, every
handler imports from it alone under the functions' Python."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from goodsdrop_local.template import REPO_ROOT, TEMPLATE_PATH, _CfnLoader, load

TEMPLATE = yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)
RUNTIME = TEMPLATE["Globals"]["Function"]["Runtime"]  # python3.12
# Top-level packages the layer's requirements.txt must bring (import names).
REQUIRED_PACKAGES = {"aws_lambda_powertools", "pydantic", "pydantic_core", "redis", "hiredis", "pymysql", "kafka",
                     "jwt"}


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("sam") / "build"
    result = subprocess.run([str(REPO_ROOT / "scripts" / "sam_build.sh"), str(target)], capture_output=True,
                            text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Build Succeeded" in result.stdout + result.stderr
    return target


def test_every_function_is_built_with_its_handler(build_dir):
    built = yaml.load((build_dir / "template.yaml").read_text(), Loader=_CfnLoader)
    functions = load(environ={}).functions
    assert functions
    for lid, function in functions.items():
        code_uri = built["Resources"][lid]["Properties"]["CodeUri"]
        handler_file = build_dir / code_uri / function.module_file.name
        assert handler_file.is_file(), f"{lid}: {handler_file} missing from the build"
        assert handler_file.read_text() == function.module_file.read_text()


def test_the_layer_has_goodsdrop_the_lua_scripts_and_the_requirements(build_dir):
    site = build_dir / "CommonLayer" / "python"
    source = REPO_ROOT / "layers" / "common" / "goodsdrop"
    built = {p.relative_to(site / "goodsdrop") for p in (site / "goodsdrop").rglob("*.py")}
    assert built == {p.relative_to(source) for p in source.rglob("*.py") if "__pycache__" not in p.parts}
    lua = {p.name for p in (REPO_ROOT / "lua").glob("*.lua")}
    assert lua and {p.name for p in (site / "goodsdrop" / "lua").glob("*.lua")} == lua
    assert {p.name for p in site.iterdir()} >= REQUIRED_PACKAGES
    # Wheels for Lambda (arm64, the runtime's CPython), not for the build host.
    (core,) = (site / "pydantic_core").glob("_pydantic_core.*.so")
    assert f"cpython-{RUNTIME.removeprefix('python').replace('.', '')}-aarch64-linux-gnu" in core.name
    assert not (site / "boto3").exists(), "boto3 comes with the Lambda runtime"


def _runtime_python() -> str | None:
    """An interpreter of the functions' runtime (PATH, then pyenv's versions), as sam_build.sh finds it."""
    version = RUNTIME.removeprefix("python")
    candidates = [shutil.which(RUNTIME) or "",
                  *glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/{RUNTIME}"))]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


def test_every_handler_imports_from_the_layer_alone(tmp_path):
    python = _runtime_python()
    assert python, f"no {RUNTIME} interpreter: sam build needs one too"
    host_layer = tmp_path / "layer"
    made = subprocess.run(["make", "--no-print-directory", "-f", str(REPO_ROOT / "layers" / "common" / "Makefile"),
                           "build-CommonLayer", f"ARTIFACTS_DIR={host_layer}",
                           "LAMBDA_PLATFORM=manylinux2014_x86_64"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    functions = load(environ={}).functions
    script = "\n".join([
        "import importlib, pathlib, sys",
        "from goodsdrop import scripts",
        f"assert scripts._lua_dir() == pathlib.Path({str(host_layer / 'python' / 'goodsdrop' / 'lua')!r})",
        "for code_dir, module, name in [",
        *[f"    ({str(f.code_dir)!r}, {f.module_file.stem!r}, {f.handler_name!r})," for f in functions.values()],
        "]:",
        "    sys.path.insert(0, code_dir)",
        "    handler = getattr(importlib.import_module(module), name)",
        "    assert callable(handler), (module, name)",
        "    sys.path.remove(code_dir)",
        "    sys.modules.pop(module)",
    ])
    # Only the standard library, the layer and the code directory (no site-packages: -S), as in
    # Lambda; boto3 is the runtime's own and is imported lazily, so it is not needed here.
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(host_layer / "python"), "AWS_DEFAULT_REGION": "ap-northeast-2"}
    result = subprocess.run([python, "-S", "-c", script], capture_output=True, text=True, timeout=120, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
