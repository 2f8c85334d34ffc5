"""Every function in the template has a sample event in events/, and it runs through `invoke` without a 5xx."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from goodsdrop_local.template import REPO_ROOT, load

FUNCTIONS = sorted(load(environ={}).functions)


def test_every_function_has_a_sample_event():
    missing = [f for f in FUNCTIONS if not (REPO_ROOT / "events" / f"{f}.json").is_file()]
    assert missing == []


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_sample_event_runs_through_its_function(servers, function_id):
    event = REPO_ROOT / "events" / f"{function_id}.json"
    result = subprocess.run([sys.executable, "-m", "goodsdrop_local", "invoke", function_id, str(event)],
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                            env={**__import__("os").environ,
                                 "PYTHONPATH": f"{REPO_ROOT}/layers/common:{REPO_ROOT}/local:{REPO_ROOT}"})
    assert result.returncode == 0, result.stdout + result.stderr
    output = json.loads(result.stdout)
    if "statusCode" in output:
        if output["statusCode"] >= 500:
            print(result.stderr)  # the function's log with its exception, shown in full under the failure
        assert output["statusCode"] < 500, output
