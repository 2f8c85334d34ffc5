"""The SAM CLI sample events kept in tests/fixtures/aws-events/ are what the SAM CLI generates today
(`tests/fixtures/aws-events/generate.sh` makes them); the event-fidelity test compares the local
runtime's events with them."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from goodsdrop_local.template import REPO_ROOT

SAMPLES = REPO_ROOT / "tests" / "fixtures" / "aws-events"
SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"
COMMANDS = re.findall(r"^generate (\S+) (.+)$", (SAMPLES / "generate.sh").read_text(), re.MULTILINE)


def test_every_event_source_of_the_runtime_has_a_sample():
    assert {name for name, _ in COMMANDS} == {"apigateway-aws-proxy.json", "apigateway-request-authorizer.json",
                                              "cloudwatch-scheduled-event.json"}
    assert (SAMPLES / "kafka-self-managed.json").is_file()  # the SAM CLI has none: the AWS guide's example


@pytest.mark.parametrize(("name", "arguments"), COMMANDS)
def test_the_stored_sample_is_what_the_sam_cli_generates(name, arguments):
    result = subprocess.run([str(SAM), "local", "generate-event", *arguments.split()], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((SAMPLES / name).read_text())
