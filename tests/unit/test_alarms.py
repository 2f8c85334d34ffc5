"""Every alarm and dashboard widget of the template watches a metric that exists: one the functions emit
(goodsdrop.telemetry.Metric, used somewhere in the code, with the dimensions it is emitted with) or one
AWS publishes in its namespace. An alarm on a metric nobody emits would never fire."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from goodsdrop.telemetry import ANSWERS, NAMESPACE, Metric
from goodsdrop_local.template import REPO_ROOT, TEMPLATE_PATH, _CfnLoader

# The AWS metrics the template may watch, per namespace, with the dimensions each is published with.
AWS_METRICS: dict[str, dict[str, set[frozenset[str]]]] = {
    "AWS/Lambda": {name: {frozenset(), frozenset({"FunctionName"})}
                   for name in ("Errors", "Throttles", "Invocations", "Duration", "ConcurrentExecutions",
                                "OffsetLag")},
    "AWS/ApiGateway": {name: {frozenset({"ApiName", "Stage"})}
                       for name in ("5XXError", "4XXError", "Count", "Latency", "IntegrationLatency")},
}
# The dimensions each emitted metric carries besides `service` (goodsdrop.telemetry's callers).
EMITTED_DIMENSIONS: dict[Metric, frozenset[str]] = {
    Metric.ORDER_ATTEMPTS: frozenset({"Answer"}), Metric.SAGA_STEP_LATENCY: frozenset({"Step"}),
    Metric.PAYMENTS: frozenset({"Outcome"}),
}
CODE_DIRS = [REPO_ROOT / "layers" / "common" / "goodsdrop", REPO_ROOT / "functions"]


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)["Resources"]


def _code() -> str:
    return "\n".join(path.read_text() for directory in CODE_DIRS for path in directory.rglob("*.py")
                     if path.name != "telemetry.py")


def emitted_in_code() -> set[Metric]:
    """The metrics some function's code emits (`Metric.NAME` passed to count/measure/timed)."""
    code = _code()
    return {metric for metric in Metric if re.search(rf"\bMetric\.{metric.name}\b", code)}


def _alarm_metrics(props: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, name, dimensions) of every metric an alarm reads."""
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"],
                 {d["Name"]: d["Value"] for d in props.get("Dimensions") or []})]
    found = []
    for query in props.get("Metrics") or []:
        metric = (query.get("MetricStat") or {}).get("Metric")
        if metric:
            found.append((metric["Namespace"], metric["MetricName"],
                          {d["Name"]: d["Value"] for d in metric.get("Dimensions") or []}))
    return found


def _dashboard_metrics(body: Any) -> list[tuple[str, str, dict[str, Any]]]:
    text = body["Fn::Sub"] if isinstance(body, dict) else body
    widgets = json.loads(text)["widgets"]
    found = []
    for widget in widgets:
        for row in widget["properties"].get("metrics", []):
            cells = [cell for cell in row if isinstance(cell, str)]
            namespace, name, rest = cells[0], cells[1], cells[2:]
            found.append((namespace, name, dict(zip(rest[::2], rest[1::2], strict=True))))
    return found


def _check(namespace: str, name: str, dimensions: dict[str, Any], where: str, emitted: set[Metric]) -> None:
    if namespace == NAMESPACE:
        assert name in {m.value for m in Metric}, f"{where}: {name} is not a goodsdrop.telemetry.Metric"
        metric = Metric(name)
        assert metric in emitted, f"{where}: no code emits {name}"
        assert dimensions.get("service") == "goodsdrop", f"{where}: {name} is emitted with service=goodsdrop"
        expected = EMITTED_DIMENSIONS.get(metric, frozenset())
        assert set(dimensions) - {"service"} == expected, f"{where}: {name} carries dimensions {sorted(expected)}"
        if "Answer" in dimensions:
            assert dimensions["Answer"] in ANSWERS
        return
    assert namespace in AWS_METRICS, f"{where}: unknown namespace {namespace}"
    assert name in AWS_METRICS[namespace], f"{where}: {namespace} publishes no {name}"
    assert frozenset(dimensions) in AWS_METRICS[namespace][name], f"{where}: {name} is not published by {dimensions}"


def test_every_alarm_watches_a_metric_that_is_emitted(resources):
    alarms = {lid: res["Properties"] for lid, res in resources.items() if res["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(alarms) >= 6
    emitted = emitted_in_code()
    for lid, props in alarms.items():
        metrics = _alarm_metrics(props)
        assert metrics, f"{lid} reads no metric"
        for namespace, name, dimensions in metrics:
            _check(namespace, name, dimensions, lid, emitted)
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], f"{lid} notifies the alarm topic"


def test_function_dimensions_name_functions_of_the_template(resources):
    for lid, res in resources.items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for _, _, dimensions in _alarm_metrics(res["Properties"]):
            if "FunctionName" in dimensions:
                ref = dimensions["FunctionName"]["Ref"]
                assert resources[ref]["Type"] == "AWS::Serverless::Function", f"{lid}: {ref}"


def test_the_alarms_cover_what_a_drop_needs_watched(resources):
    watched = {(ns, name) for res in resources.values() if res["Type"] == "AWS::CloudWatch::Alarm"
               for ns, name, _ in _alarm_metrics(res["Properties"])}
    assert {(NAMESPACE, "DeadLetteredRecords"), ("AWS/Lambda", "OffsetLag"), ("AWS/ApiGateway", "5XXError"),
            ("AWS/Lambda", "Throttles"), ("AWS/Lambda", "Errors"), (NAMESPACE, "ReservationExpiryFailures")} <= watched
    mappings = [res["Properties"]["FunctionName"]["Ref"] for res in resources.values()
                if res["Type"] == "AWS::Lambda::EventSourceMapping"]
    lagging = {res["Properties"]["Dimensions"][0]["Value"]["Ref"] for res in resources.values()
               if res["Type"] == "AWS::CloudWatch::Alarm" and res["Properties"].get("MetricName") == "OffsetLag"}
    assert set(mappings) == lagging, "every Kafka mapping's function has an offset lag alarm"


def test_the_dashboard_shows_only_emitted_metrics(resources):
    dashboards = [res for res in resources.values() if res["Type"] == "AWS::CloudWatch::Dashboard"]
    assert len(dashboards) == 1
    metrics = _dashboard_metrics(dashboards[0]["Properties"]["DashboardBody"])
    emitted = emitted_in_code()
    for namespace, name, dimensions in metrics:
        _check(namespace, name, dimensions, "DropDashboard", emitted)
    assert {m.value for m in emitted} <= {name for ns, name, _ in metrics if ns == NAMESPACE}, \
        "every metric the code emits is on the dashboard"


def test_a_metric_nobody_emits_is_caught():
    with pytest.raises(AssertionError, match=r"not a goodsdrop\.telemetry\.Metric"):
        _check(NAMESPACE, "OrdersTeleported", {"service": "goodsdrop"}, "probe", emitted_in_code())
    with pytest.raises(AssertionError, match="publishes no"):
        _check("AWS/Lambda", "Teleports", {}, "probe", set())
