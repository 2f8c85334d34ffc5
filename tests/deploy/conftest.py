"""The template as SAM deploys it, for the deploy tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from goodsdrop_local.template import REPO_ROOT, TEMPLATE_PATH

SAM_PYTHON = REPO_ROOT / ".venv-sam" / "bin" / "python"


@pytest.fixture(scope="session")
def cloudformation() -> dict[str, Any]:
    """infra/template.yaml translated to plain CloudFormation by aws-sam-translator (in .venv-sam)."""
    assert SAM_PYTHON.exists(), "run scripts/install.sh: .venv-sam is missing"
    result = subprocess.run([str(SAM_PYTHON), str(Path(__file__).with_name("sam_translate.py")), str(TEMPLATE_PATH)],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
