"""Tests, the local runtime and CI run on the Python the template's functions run on in Lambda.

`make install` builds .venv with the template's `Runtime: pythonX.Y` (scripts/template_python.sh
finds the interpreter); these tests fail when the two drift apart, and show that a missing
interpreter is a clear error, not a venv of another version.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

from goodsdrop_local.template import REPO_ROOT, load

FUNCTIONS = load(environ={}).functions
FIND_PYTHON = REPO_ROOT / "scripts" / "template_python.sh"


def _version(runtime: str) -> tuple[int, int]:
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    assert match, runtime
    return int(match.group(1)), int(match.group(2))


def template_version() -> tuple[int, int]:
    """The one Python version every function of the template runs on."""
    versions = {_version(f.runtime) for f in FUNCTIONS.values()}
    assert len(versions) == 1, f"the functions name several runtimes: {versions}"
    return versions.pop()


def test_this_interpreter_is_the_templates_runtime():
    assert sys.version_info[:2] == template_version(), (
        f"tests run on Python {sys.version.split()[0]}, the template's functions on "
        f"python{'.'.join(map(str, template_version()))}: run `make install` to rebuild .venv")


def test_the_venvs_python_is_the_templates_runtime():
    # The runtime (uvicorn workers, Kafka pollers) is started with .venv/bin/python (goodsdrop_local.stack).
    out = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "python"), "-c",
                          "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    assert out == "{}.{}".format(*template_version())


def test_the_projects_python_settings_follow_the_template():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    major, minor = template_version()
    assert project["project"]["requires-python"] == f">={major}.{minor}"
    assert project["tool"]["ruff"]["target-version"] == f"py{major}{minor}"


def test_the_installer_finds_the_templates_interpreter():
    result = subprocess.run([str(FIND_PYTHON)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = subprocess.run([result.stdout.strip(), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    assert found == "{}.{}".format(*template_version())


def test_make_install_fails_clearly_without_the_templates_interpreter(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text("Globals:\n  Function:\n    Runtime: python3.99\n")
    venv_before = (REPO_ROOT / ".venv" / "bin" / "python").resolve()
    result = subprocess.run([str(REPO_ROOT / "scripts" / "install.sh")], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GOODSDROP_TEMPLATE": str(template)})
    assert result.returncode == 1
    assert "the template's runtime is python3.99" in result.stderr and "pyenv install 3.99" in result.stderr
    assert (REPO_ROOT / ".venv" / "bin" / "python").resolve() == venv_before  # the venv is left alone


def test_a_template_with_two_python_runtimes_is_refused(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text("Globals:\n  Function:\n    Runtime: python3.12\nResources:\n  F:\n"
                        "    Properties:\n      Runtime: python3.13\n")
    result = subprocess.run([str(FIND_PYTHON)], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GOODSDROP_TEMPLATE": str(template)})
    assert result.returncode == 1 and "exactly one Python runtime" in result.stderr
