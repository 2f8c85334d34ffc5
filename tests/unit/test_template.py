"""The runtime reads the SAM template the way SAM/CloudFormation would."""

from pathlib import Path

import pytest

from goodsdrop_local.template import REPO_ROOT, Resolver, load, parameter_env_name

FIXTURE = Path(__file__).parents[1] / "fixtures" / "template.yaml"


@pytest.fixture(scope="module")
def app():
    return load(FIXTURE, environ={})


def test_parameter_env_names_follow_one_convention():
    assert parameter_env_name("KafkaBootstrapServers") == "GOODSDROP_KAFKA_BOOTSTRAP_SERVERS"
    assert parameter_env_name("Stage") == "GOODSDROP_STAGE"


def test_intrinsics_resolve_against_parameters():
    resolve = Resolver({"Stage": "dev", "Hosts": "a:1,b:2"})
    assert resolve({"Fn::Sub": "api-${Stage}-${AWS::Region}"}) == "api-dev-local"
    assert resolve({"Fn::Split": [",", {"Ref": "Hosts"}]}) == ["a:1", "b:2"]
    assert resolve({"Fn::Join": ["-", ["x", {"Ref": "Stage"}]]}) == "x-dev"
    assert resolve({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "Hosts"}]}]}) == "b:2"
    assert resolve({"Fn::Sub": ["${A}/${Stage}", {"A": "one"}]}) == "one/dev"


def test_functions_merge_globals_and_skip_empty_parameters(app):
    echo = app.functions["EchoFunction"]
    assert echo.environment == {"FROM_GLOBALS": "yes", "FROM_FUNCTION": "test-fn"}
    assert echo.timeout == 2
    assert app.functions["HangFunction"].timeout == 1
    assert echo.module_file == FIXTURE.parent / "functions" / "echo.py"
    assert echo.handler_name == "handler"


def test_parameters_come_from_the_environment(tmp_path):
    app = load(FIXTURE, environ={"GOODSDROP_STAGE": "prod"})
    assert app.functions["EchoFunction"].environment["FROM_FUNCTION"] == "prod-fn"
    assert app.stage == "prod"


def test_routes_take_the_default_authorizer_unless_none(app):
    routes = {(r.method, r.path): r.authorizer for r in app.routes}
    assert routes[("GET", "/things/{id}")] is None
    assert routes[("POST", "/me")] == "TestAuthorizer"
    authorizer = app.authorizers["TestAuthorizer"]
    assert authorizer.function_id == "AuthorizerFunction"
    assert authorizer.identity_headers == ["Authorization"]
    assert authorizer.ttl_seconds == 0


def test_kafka_mappings_from_sam_events_and_plain_resources(app):
    by_name = {m.name: m for m in app.kafka}
    sam = by_name["ConsumerFunction.Things"]
    assert sam.topics == ["t.things"] and sam.consumer_group == "things-consumer" and sam.batch_size == 10
    assert sam.effective_retries is None  # -1 without a destination: forever
    raw = by_name["ConsumerMapping"]
    assert raw.function_id == "ConsumerFunction"
    assert raw.on_failure_topic == "t.dlq"
    assert raw.effective_retries == 2
    assert raw.bisect_on_error and raw.report_item_failures
    assert raw.pollers == 2 and sam.pollers == 1


def test_each_mapping_gets_as_many_poller_processes_as_its_minimum_pollers(app):
    from goodsdrop_local.__main__ import children

    names = [c.name for c in children(app)]
    assert names.count("poller-ConsumerMapping-0") == 1 and names.count("poller-ConsumerMapping-1") == 1
    assert "poller-ConsumerFunction.Things-0" in names and "poller-ConsumerFunction.Things-1" not in names
    assert "api" in names and "container-StreamTask" in names


def test_infinite_retries_with_a_destination_are_capped_at_ten(app):
    from dataclasses import replace

    raw = next(m for m in app.kafka if m.name == "ConsumerMapping")
    assert replace(raw, maximum_retry_attempts=-1).effective_retries == 10


def test_schedules_and_containers(app):
    assert [(s.function_id, s.every_seconds) for s in app.schedules] == [("GarbageFunction", 120)]
    (container,) = app.containers
    assert container.command == ["python", "-m", "live_stock"]
    assert container.environment == {"A": "test"}
    assert container.container_port == 8080
    assert container.python_path == [REPO_ROOT / "containers"]


def test_gateway_responses(app):
    denied = app.gateway_responses["ACCESS_DENIED"]
    assert denied.status == 401 and "$context.authorizer.errorCode" in denied.template


def test_the_product_template_loads_and_every_handler_file_exists():
    app = load(environ={})
    assert app.routes and app.kafka and app.containers
    for function in app.functions.values():
        assert function.module_file.is_file(), function.logical_id
        source = function.module_file.read_text()
        assert f"def {function.handler_name}(" in source, function.logical_id


def test_tracing_is_disabled_locally_unless_an_xray_daemon_is_configured():
    from goodsdrop_local.template import TEMPLATE_PATH

    local = load(TEMPLATE_PATH, environ={}).functions["PlaceOrderFunction"].environment
    assert local["POWERTOOLS_TRACE_DISABLED"] == "true"
    with_daemon = load(TEMPLATE_PATH, environ={"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"})
    assert "POWERTOOLS_TRACE_DISABLED" not in with_daemon.functions["PlaceOrderFunction"].environment
