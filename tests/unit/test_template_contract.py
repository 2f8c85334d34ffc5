"""The template, the code and the HTTP contract agree (no route only in code, only in YAML or only in
the contract), and every function is deployable as SAM expects: checked for every function, so new
ones are covered as they are added."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from goodsdrop_local.template import REPO_ROOT, TEMPLATE_PATH, _CfnLoader

# The product owner's contract: shared/ beside the clone (CI), or the workplace's shared/.
CONTRACT = next((p for p in (REPO_ROOT.parent / "shared" / "api-contract.md", Path("/work/shared/api-contract.md"))
                 if p.is_file()), REPO_ROOT.parent / "shared" / "api-contract.md")

# Routes of the contract not served yet. A route leaves this list in the commit that adds it to the
# template; the test below fails while a listed route is in the template, so the list only shrinks.
NOT_YET_IMPLEMENTED: set[tuple[str, str]] = set()

# Api routes of the template that the contract does not list, each with its reason.
EXTRA_ROUTES: set[tuple[str, str]] = {
    # A new verification mail for a signed-in member whose link expired (rate-limited); the
    # contract's sign-up sends the first one.
    ("POST", "/members/verify/resend"),
    # The API's own OpenAPI document (issue 9), which schemathesis tests the API against.
    ("GET", "/openapi.json"),
    # A drop's waiting room (issue 11, admission control): POST /orders answers 409
    # QUEUE_REQUIRED while it is open; buyers join here and order once their ticket is admitted.
    ("POST", "/products/{id}/queue"),
    ("GET", "/products/{id}/queue/{ticket}"),
    # The drop dashboard (issue 19): sellers watch their drops, operators every drop; the live
    # figures come over the SSE container with a ticket from the API.
    ("GET", "/dashboard/products"),
    ("GET", "/dashboard/products/{id}/report"),
    ("POST", "/dashboard/products/{id}/stream-ticket"),
    # The seller's order desk (issue 20): the lines to ship, and the seller's decision on a return
    # request (issue 15: returns are requests the seller accepts on receipt, then refund and restock).
    ("GET", "/seller/orders"),
    ("PUT", "/seller/orders/{id}/items/{productId}/return"),
    # Taking a product off sale and back, and deleting one nothing was ever ordered of (issue 20).
    ("PUT", "/products/{id}/listing"),
    ("DELETE", "/products/{id}"),
}

# Served by the live-stock container (the ECS service / `make up`'s SSE port), not by the Api.
CONTAINER_ROUTES: set[tuple[str, str]] = {("GET", "/stream/products/{id}/stock"), ("GET", "/stream/products/{id}/drop")}

RUNTIMES = {"python3.12", "python3.13"}
API_GATEWAY_TIMEOUT_SECONDS = 29


def _normalise(path: str) -> str:
    """`/orders/{id}/items/{productId}` → `/orders/{}/items/{}`: API Gateway matches by position."""
    return re.sub(r"\{[^}]+\}", "{}", path.split("?")[0])


def contract_routes(text: str) -> set[tuple[str, str]]:
    """Method + path of every route in the contract: table rows and inline `METHOD /path` spans."""
    routes: set[tuple[str, str]] = set()
    for methods, path in re.findall(r"(?m)^\|\s*([A-Z][A-Z /]*?)\s*\|\s*(/\S*?)\s*\|", text):
        for method in methods.split("/"):
            routes.add((method.strip(), path.split("?")[0]))
    for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^\s`]*)", text):
        routes.add((method, path.split("?")[0]))
    return routes


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)


@pytest.fixture(scope="module")
def functions(template) -> dict[str, dict[str, Any]]:
    """Every AWS::Serverless::Function with the Globals merged in, as SAM merges them."""
    globals_fn = template["Globals"]["Function"]
    return {lid: {**globals_fn, **res["Properties"]} for lid, res in template["Resources"].items()
            if res["Type"] == "AWS::Serverless::Function"}


@pytest.fixture(scope="module")
def api_routes(template) -> dict[tuple[str, str], str]:
    routes: dict[tuple[str, str], str] = {}
    for lid, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for event in (res["Properties"].get("Events") or {}).values():
            if event["Type"] == "Api":
                key = (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
                assert key not in routes, f"{key} is served by {routes[key]} and {lid}"
                routes[key] = lid
    return routes


def test_the_contract_parses_into_routes():
    assert CONTRACT.is_file(), f"the HTTP contract is not at {CONTRACT}"
    routes = contract_routes(CONTRACT.read_text())
    # Spot checks of each notation: a table row, a "GET / PATCH" row, a query string, an inline span.
    assert {("POST", "/members"), ("GET", "/members/me"), ("PATCH", "/members/me"), ("GET", "/members/verify"),
            ("DELETE", "/cart/items/{productId}"), ("GET", "/stream/products/{id}/stock")} <= routes
    assert len(routes) >= 29


def test_every_contract_route_is_in_the_template_unless_not_yet_implemented(api_routes):
    contract = contract_routes(CONTRACT.read_text())
    template = {(m, _normalise(p)) for m, p in api_routes}
    pending = {(m, _normalise(p)) for m, p in NOT_YET_IMPLEMENTED | CONTAINER_ROUTES}
    missing = sorted((m, p) for m, p in contract if (m, _normalise(p)) not in template | pending)
    assert missing == [], "contract routes that no function serves (add them, or to NOT_YET_IMPLEMENTED)"


def test_not_yet_implemented_routes_are_really_not_in_the_template(api_routes):
    template = {(m, _normalise(p)) for m, p in api_routes}
    done = sorted(r for r in NOT_YET_IMPLEMENTED if (r[0], _normalise(r[1])) in template)
    assert done == [], "these routes are in the template now: remove them from NOT_YET_IMPLEMENTED"
    contract = {(m, _normalise(p)) for m, p in contract_routes(CONTRACT.read_text())}
    assert {(m, _normalise(p)) for m, p in NOT_YET_IMPLEMENTED} <= contract, "only contract routes can be pending"


def test_every_template_route_is_in_the_contract_or_a_listed_extra(api_routes):
    contract = {(m, _normalise(p)) for m, p in contract_routes(CONTRACT.read_text())}
    extras = {(m, _normalise(p)) for m, p in EXTRA_ROUTES}
    unknown = sorted(r for r in api_routes if (r[0], _normalise(r[1])) not in contract | extras)
    assert unknown == [], "routes only in the template: add them to the contract or to EXTRA_ROUTES"
    stale = sorted(r for r in EXTRA_ROUTES if r not in api_routes)
    assert stale == [], "EXTRA_ROUTES lists routes the template no longer has"


def test_container_routes_are_served_by_the_live_stock_task(template):
    tasks = [res for res in template["Resources"].values() if res["Type"] == "AWS::ECS::TaskDefinition"]
    assert len(tasks) == 1
    server = (REPO_ROOT / "containers" / "live_stock" / "server.py").read_text()
    assert "/stream/products/" in server


def test_every_handler_resolves_to_a_function_in_its_file(functions, template):
    for lid, fn in functions.items():
        module, _, name = fn["Handler"].rpartition(".")
        assert module and name, f"{lid}: Handler must be <module>.<function>"
        path = (TEMPLATE_PATH.parent / fn["CodeUri"]).resolve() / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"{lid}: {path} does not exist"
        tree = ast.parse(path.read_text(), filename=str(path))
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name in defined, f"{lid}: {path.name} defines no top-level function {name}()"
        assert (REPO_ROOT / "events" / f"{lid}.json").is_file(), f"{lid}: no sample event events/{lid}.json"


def test_every_function_has_runtime_memory_timeout_policies_and_the_layer(functions):
    for lid, fn in functions.items():
        assert fn["Runtime"] in RUNTIMES, lid
        assert isinstance(fn["MemorySize"], int) and 128 <= fn["MemorySize"] <= 10240, lid
        assert isinstance(fn["Timeout"], int) and 1 <= fn["Timeout"] <= 900, lid
        assert isinstance(fn.get("Policies"), list), f"{lid}: declare Policies (`[]` when it calls no AWS API)"
        assert {"Ref": "CommonLayer"} in fn["Layers"], lid
        assert fn["VpcConfig"]["SubnetIds"] == {"Ref": "PrivateSubnetIds"}, lid
        if any(e["Type"] == "Api" for e in (fn.get("Events") or {}).values()):
            assert fn["Timeout"] <= API_GATEWAY_TIMEOUT_SECONDS, f"{lid}: API Gateway gives up after 29 s"


def test_environment_comes_from_parameters_not_hard_coded_endpoints(template, functions):
    parameters = set(template["Parameters"])
    for lid, fn in functions.items():
        merged = {**template["Globals"]["Function"]["Environment"]["Variables"],
                  **((fn.get("Environment") or {}).get("Variables") or {})}
        for name, value in merged.items():
            if isinstance(value, dict):
                assert value.get("Ref") in parameters, f"{lid}: {name} must be !Ref <Parameter>"
            else:
                assert not re.search(r"localhost|127\.0\.0\.1|:\d{2,5}\b", str(value)), f"{lid}: {name}={value}"


def test_api_events_use_the_one_api_with_its_authorizer(template, functions):
    api = template["Resources"]["GoodsDropApi"]["Properties"]["Auth"]
    assert api["DefaultAuthorizer"] in api["Authorizers"]
    for authorizer in api["Authorizers"].values():
        assert authorizer["FunctionArn"]["Fn::GetAtt"][0] in functions
    for lid, fn in functions.items():
        for event in (fn.get("Events") or {}).values():
            if event["Type"] == "Api":
                assert event["Properties"]["RestApiId"] == {"Ref": "GoodsDropApi"}, lid
            assert event["Type"] in {"Api", "Schedule", "ScheduleV2"}, f"{lid}: Kafka goes in an EventSourceMapping"
            if event["Type"].startswith("Schedule"):
                expression = event["Properties"].get("Schedule") or event["Properties"]["ScheduleExpression"]
                assert re.fullmatch(r"rate\(\d+ (second|minute|hour|day)s?\)", expression), lid


def test_every_kafka_mapping_has_the_failure_controls_and_broker_access(template, functions):
    mappings = {lid: res["Properties"] for lid, res in template["Resources"].items()
                if res["Type"] == "AWS::Lambda::EventSourceMapping"}
    assert mappings
    for lid, props in mappings.items():
        function_id = props["FunctionName"]["Ref"]
        assert function_id in functions, lid
        assert props["Topics"] and props["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"], lid
        assert props["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"] == \
            {"Fn::Split": [",", {"Ref": "KafkaBootstrapServers"}]}, lid
        assert props["StartingPosition"] in {"LATEST", "TRIM_HORIZON"}, lid
        assert 1 <= props["BatchSize"] <= 10000, lid
        assert 0 <= props["MaximumRetryAttempts"] <= 10, f"{lid}: bounded retries, then the dead-letter topic"
        assert props["BisectBatchOnFunctionError"] is True, lid
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], lid
        assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::Sub": "kafka://${TopicPrefix}dead-letters"}
        # Error-handling controls need provisioned mode; the pollers reach the brokers in the VPC.
        assert props["ProvisionedPollerConfig"]["MinimumPollers"] >= 1, lid
        access = [c for c in props["SourceAccessConfigurations"] if "Type" in c]
        assert {c["Type"] for c in access} == {"VPC_SUBNET", "VPC_SECURITY_GROUP"}, lid
        assert any("Fn::If" in c and c["Fn::If"][0] == "HasKafkaSaslSecret"
                   for c in props["SourceAccessConfigurations"]), f"{lid}: the optional SASL secret"
        assert {"Ref": "KafkaConsumerPolicy"} in functions[function_id]["Policies"], \
            f"{function_id}: Kafka consumers attach KafkaConsumerPolicy"


def test_layer_and_outputs(template):
    layer = template["Resources"]["CommonLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert (TEMPLATE_PATH.parent / layer["Properties"]["ContentUri"] / "Makefile").is_file()
    assert {"ApiUrl", "StreamUrl"} <= set(template["Outputs"])
