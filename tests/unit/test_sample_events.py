"""Every sample event in events/ (`make invoke FN=.. EVENT=..`) is what AWS would hand that function:
it validates against Powertools' model of its event source and has every key of the SAM CLI's sample."""

from __future__ import annotations

import json

import pytest

from goodsdrop_local.template import REPO_ROOT, load
from tests.support.aws_events import problems, sources_of

SOURCES = sources_of(load(environ={}))


@pytest.mark.parametrize("function_id", sorted(SOURCES))
def test_the_sample_event_is_what_aws_sends(function_id):
    event = json.loads((REPO_ROOT / "events" / f"{function_id}.json").read_text())
    (source,) = SOURCES[function_id]
    assert problems(source, event) == []
    if source == "request-authorizer":
        assert "authorizationToken" not in event  # only TOKEN authorizers get it
