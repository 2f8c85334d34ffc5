"""`make lint` as tests, so CI (`make test`) runs it: ruff, cfn-lint and `sam validate --lint` on the
template, shellcheck on every shell script."""

from __future__ import annotations

import os
import subprocess
import sys

from goodsdrop_local.template import REPO_ROOT, TEMPLATE_PATH

SAM_BIN = REPO_ROOT / ".venv-sam" / "bin"
SHELL_SCRIPTS = sorted([*REPO_ROOT.glob("scripts/*.sh"), REPO_ROOT / ".ci" / "run",
                        *REPO_ROOT.glob("infra/localstack/*.sh"), *REPO_ROOT.glob("tests/fixtures/aws-events/*.sh")])


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0",
           "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "ap-northeast-2")}
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT, env=env)


def test_ruff_is_clean():
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_is_clean():
    result = _run(str(SAM_BIN / "cfn-lint"), str(TEMPLATE_PATH))
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_is_clean():
    result = _run(str(SAM_BIN / "sam"), "validate", "--lint", "--template-file", str(TEMPLATE_PATH))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_shellcheck_is_clean():
    assert len(SHELL_SCRIPTS) >= 5
    result = _run("shellcheck", *map(str, SHELL_SCRIPTS))
    assert result.returncode == 0, result.stdout + result.stderr
