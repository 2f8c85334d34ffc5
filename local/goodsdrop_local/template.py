"""Reads infra/template.yaml (SAM) into what the local runtime serves.

The template is the single source of truth: functions, their Api routes and authorizer, their
Kafka event-source mappings (SAM `SelfManagedKafka`/`MSK` events or plain
`AWS::Lambda::EventSourceMapping` resources), schedules, and the long-lived SSE container (an
`AWS::ECS::TaskDefinition`). CloudFormation intrinsics are resolved against Parameters, whose
values come from the environment (`GOODSDROP_<UPPER_SNAKE_NAME>`, like
`sam local --parameter-overrides`) or their Default.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = Path(os.environ.get("GOODSDROP_TEMPLATE", REPO_ROOT / "infra" / "template.yaml"))


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form tags (!Ref, !Sub, ...)."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode), node
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def parameter_env_name(parameter: str) -> str:
    """`KafkaBootstrapServers` → `GOODSDROP_KAFKA_BOOTSTRAP_SERVERS`."""
    return "GOODSDROP_" + re.sub(r"(?<!^)(?=[A-Z])", "_", parameter).upper()


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class Resolver:
    """Resolves intrinsic functions against parameter values."""

    parameters: dict[str, str]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.parameters.get(arg, {"AWS::Region": "local", "AWS::AccountId": "000000000000",
                                                 "AWS::StackName": "goodsdrop", "AWS::Partition": "aws",
                                                 "AWS::URLSuffix": "amazonaws.com"}.get(arg, arg))
            if key == "Fn::Sub":
                text, extra = (arg[0], self(arg[1])) if isinstance(arg, list) else (arg, {})
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(extra.get(m.group(1), self({"Ref": m.group(1)}))), text)
            if key == "Fn::GetAtt":
                return ".".join(arg) if isinstance(arg, list) else arg
            if key == "Fn::Join":
                return str(arg[0]).join(str(self(v)) for v in self(arg[1]))
            if key == "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            if key == "Fn::Split":
                return str(self(arg[1])).split(arg[0])
            if key == "Fn::If":
                return self(arg[1])  # local runs take the "true" branch of a condition
        return {k: self(v) for k, v in value.items()}


@dataclass
class Authorizer:
    """A Lambda REQUEST/TOKEN authorizer of the Api."""

    name: str
    function_id: str
    payload_type: str
    identity_headers: list[str]
    ttl_seconds: int


@dataclass
class Route:
    method: str
    path: str
    function_id: str
    authorizer: str | None


@dataclass
class KafkaMapping:
    """One Kafka event-source mapping with Lambda's failure-handling settings."""

    name: str
    function_id: str
    topics: list[str]
    consumer_group: str
    batch_size: int = 100
    batching_window_seconds: float = 0.5
    starting_position: str = "TRIM_HORIZON"
    maximum_retry_attempts: int = -1
    maximum_record_age_seconds: int = -1
    bisect_on_error: bool = False
    report_item_failures: bool = False
    on_failure_topic: str | None = None
    enabled: bool = True
    pollers: int = 1  # ProvisionedPollerConfig.MinimumPollers: pollers sharing the group's partitions

    @property
    def effective_retries(self) -> int | None:
        """Retries after the first attempt; None is infinite. Lambda caps infinite at 10 with a destination."""
        if self.maximum_retry_attempts >= 0:
            return self.maximum_retry_attempts
        return 10 if self.on_failure_topic else None


@dataclass
class Schedule:
    name: str
    function_id: str
    every_seconds: float


@dataclass
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: float
    memory: int
    environment: dict[str, str]
    layer_dirs: list[Path]

    @property
    def module_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass
class Container:
    """The long-lived container service (the SSE stream)."""

    logical_id: str
    command: list[str]
    environment: dict[str, str]
    container_port: int
    working_dir: Path
    python_path: list[Path]


@dataclass(frozen=True)
class Throttle:
    """API Gateway method throttling: a token bucket of `burst` refilled at `rate` per second."""

    rate: float
    burst: int


STAGE_WIDE = ("*", "/*")  # MethodSettings' HttpMethod and ResourcePath for every method of the stage


@dataclass
class GatewayResponse:
    """One of the Api's GatewayResponses; `status` None keeps the response type's own status."""

    status: int | None
    template: str
    headers: dict[str, str]


@dataclass
class Cors:
    """The Api's SAM `Cors`: SAM adds an OPTIONS method (mock integration) to every path with these values."""

    allow_origin: str
    allow_headers: str | None = None
    allow_methods: str | None = None  # None: the path's own methods and OPTIONS, as SAM generates them
    max_age: str | None = None
    allow_credentials: bool = False


@dataclass
class App:
    """Everything the runtime serves, as the template declares it."""

    functions: dict[str, Function] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    authorizers: dict[str, Authorizer] = field(default_factory=dict)
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)
    kafka: list[KafkaMapping] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)
    cors: Cors | None = None
    default_authorizer: str | None = None
    stage: str = "local"
    # (HTTP method, resource path) -> the stage's method throttle; STAGE_WIDE for the stage's default
    throttles: dict[tuple[str, str], Throttle] = field(default_factory=dict)

    def throttle_for(self, method: str, resource: str) -> tuple[tuple[str, str], Throttle] | None:
        """The throttle API Gateway applies to `method` on `resource` (its own, else the stage-wide one)."""
        for key in ((method, resource), STAGE_WIDE):
            if key in self.throttles:
                return key, self.throttles[key]
        return None


_RATE = re.compile(r"rate\((\d+)\s+(second|minute|hour|day)s?\)")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _schedule_seconds(expression: str) -> float:
    match = _RATE.fullmatch(expression.strip())
    if not match:
        raise ValueError(f"only rate() schedules run locally, got {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _ref_id(value: Any) -> str:
    """The logical id named by !Ref X, !GetAtt X.Arn, or a plain string."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return str(att[0] if isinstance(att, list) else att.split(".")[0])
    return str(value).split(".")[0]


def _kafka_topic(destination: str | None) -> str | None:
    if not destination:
        return None
    return destination.removeprefix("kafka://")


def _mapping(name: str, function_id: str, props: dict[str, Any], resolve: Resolver) -> KafkaMapping:
    group = (props.get("ConsumerGroupId")
             or props.get("SelfManagedKafkaEventSourceConfig", {}).get("ConsumerGroupId")
             or props.get("AmazonManagedKafkaEventSourceConfig", {}).get("ConsumerGroupId")
             or name)
    destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return KafkaMapping(
        name=name,
        function_id=function_id,
        topics=[str(t) for t in resolve(props["Topics"])],
        consumer_group=str(resolve(group)),
        batch_size=int(props.get("BatchSize", 100)),
        batching_window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0.5)),
        starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
        maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
        maximum_record_age_seconds=int(props.get("MaximumRecordAgeInSeconds", -1)),
        bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
        report_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        on_failure_topic=_kafka_topic(resolve(destination)),
        enabled=bool(props.get("Enabled", True)),
        pollers=max(1, int((props.get("ProvisionedPollerConfig") or {}).get("MinimumPollers", 1))),
    )


def _cors(spec: Any, resolve: Resolver) -> Cors | None:
    """SAM's `Cors` property: a quoted origin string, or a dict of quoted header values."""
    if not spec:
        return None
    if not isinstance(spec, dict):
        return Cors(str(resolve(spec)).strip("'"))

    def value(key: str) -> str | None:
        return str(resolve(spec[key])).strip("'") if key in spec else None

    return Cors(allow_origin=value("AllowOrigin") or "*", allow_headers=value("AllowHeaders"),
                allow_methods=value("AllowMethods"), max_age=value("MaxAge"),
                allow_credentials=str(spec.get("AllowCredentials", False)).lower() == "true")


def load(path: Path = TEMPLATE_PATH, environ: dict[str, str] | None = None) -> App:  # noqa: C901 - a branch per resource type
    """Parse the SAM template at `path` into an `App`."""
    environ = dict(os.environ if environ is None else environ)
    doc = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    base = path.parent

    parameters: dict[str, str] = {}
    empty_parameters: set[str] = set()
    for name, spec in (doc.get("Parameters") or {}).items():
        value = environ.get(parameter_env_name(name), str(spec.get("Default", "")))
        parameters[name] = value
        if value == "":
            empty_parameters.add(name)
    resolve = Resolver(parameters)
    resources: dict[str, Any] = doc.get("Resources") or {}
    globals_fn: dict[str, Any] = (doc.get("Globals") or {}).get("Function") or {}

    layer_dirs = {
        lid: (base / res["Properties"]["ContentUri"]).resolve()
        for lid, res in resources.items()
        if res["Type"] == "AWS::Serverless::LayerVersion"
    }

    def environment(props: dict[str, Any]) -> dict[str, str]:
        merged: dict[str, Any] = {}
        for source in (globals_fn, props):
            merged.update((source.get("Environment") or {}).get("Variables") or {})
        result: dict[str, str] = {}
        for key, value in merged.items():
            # A variable fed by an empty Parameter is left unset, so the settings loader's
            # local defaults (the project-owned stack) apply.
            if isinstance(value, dict) and "Ref" in value and value["Ref"] in empty_parameters:
                continue
            result[key] = str(resolve(value))
        return result

    def traced_environment(merged: dict[str, Any], props: dict[str, Any]) -> dict[str, str]:
        result = environment(props)
        if merged.get("Tracing") == "Active" and "AWS_XRAY_DAEMON_ADDRESS" not in environ:
            # Lambda runs an X-Ray daemon for a function with Tracing: Active; none runs here, so the
            # Tracer is switched off rather than sending segments nowhere (README: local vs AWS).
            result.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        return result

    app = App(stage=parameters.get("Stage", "local"))
    for lid, res in resources.items():
        rtype, props = res["Type"], res.get("Properties") or {}
        if rtype == "AWS::Serverless::Function":
            merged = {**globals_fn, **props}
            app.functions[lid] = Function(
                logical_id=lid,
                code_dir=(base / merged["CodeUri"]).resolve(),
                handler=merged["Handler"],
                runtime=merged.get("Runtime", "python3.12"),
                timeout=float(merged.get("Timeout", 3)),
                memory=int(merged.get("MemorySize", 128)),
                environment=traced_environment(merged, props),
                layer_dirs=[layer_dirs[_ref_id(lyr)] for lyr in merged.get("Layers", []) if _ref_id(lyr) in layer_dirs],
            )
            for event_name, event in (props.get("Events") or {}).items():
                eprops = event.get("Properties") or {}
                if event["Type"] == "Api":
                    auth = (eprops.get("Auth") or {}).get("Authorizer")
                    app.routes.append(Route(eprops["Method"].upper(), eprops["Path"], lid, auth))
                elif event["Type"] in ("SelfManagedKafka", "MSK"):
                    app.kafka.append(_mapping(f"{lid}.{event_name}", lid, eprops, resolve))
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    expr = eprops.get("Schedule") or eprops.get("ScheduleExpression")
                    app.schedules.append(Schedule(f"{lid}.{event_name}", lid, _schedule_seconds(resolve(expr))))
        elif rtype == "AWS::Lambda::EventSourceMapping" and "Topics" in props:
            app.kafka.append(_mapping(lid, _ref_id(props["FunctionName"]), props, resolve))
        elif rtype == "AWS::Serverless::Api":
            auth = props.get("Auth") or {}
            for name, spec in (auth.get("Authorizers") or {}).items():
                identity = spec.get("Identity") or {}
                app.authorizers[name] = Authorizer(
                    name=name,
                    function_id=_ref_id(spec["FunctionArn"]),
                    payload_type=spec.get("FunctionPayloadType", "TOKEN"),
                    identity_headers=identity.get("Headers") or [identity.get("Header", "Authorization")],
                    ttl_seconds=int(identity.get("ReauthorizeEvery", 300)),
                )
            app.default_authorizer = auth.get("DefaultAuthorizer")
            for kind, spec in (props.get("GatewayResponses") or {}).items():
                templates = spec.get("ResponseTemplates") or {}
                headers = {k: str(resolve(v)).strip("'") for k, v in
                           ((spec.get("ResponseParameters") or {}).get("Headers") or {}).items()}
                status = spec.get("StatusCode")
                app.gateway_responses[kind] = GatewayResponse(int(status) if status is not None else None,
                                                              templates.get("application/json", ""), headers)
            app.cors = _cors(props.get("Cors"), resolve)
            for setting in props.get("MethodSettings") or []:
                rate, burst = setting.get("ThrottlingRateLimit"), setting.get("ThrottlingBurstLimit")
                if rate is None and burst is None:
                    continue
                # ResourcePath writes "/" inside the path as "~1": /~1auth~1login is /auth/login.
                resource = str(resolve(setting.get("ResourcePath", "/*")))
                resource = resource if resource == "/*" else resource.removeprefix("/").replace("~1", "/") or "/"
                # An unset limit is the account's (10,000 per second, burst 5,000).
                app.throttles[(str(resolve(setting.get("HttpMethod", "*"))).upper(), resource)] = Throttle(
                    float(resolve(rate) if rate is not None else 10_000),
                    int(float(resolve(burst) if burst is not None else 5_000)))
        elif rtype == "AWS::ECS::TaskDefinition":
            meta = res.get("Metadata") or {}
            container = props["ContainerDefinitions"][0]
            context = (base / meta.get("DockerContext", ".")).resolve()
            app.containers.append(Container(
                logical_id=lid,
                command=[str(c) for c in resolve(container.get("Command") or [])],
                environment={e["Name"]: str(resolve(e["Value"])) for e in container.get("Environment") or []
                             if not (isinstance(e["Value"], dict) and e["Value"].get("Ref") in empty_parameters)},
                container_port=int(container["PortMappings"][0]["ContainerPort"]),
                working_dir=context,
                python_path=[(context / p).resolve() for p in meta.get("LocalPythonPath", [])],
            ))
    for route in app.routes:
        if route.authorizer is None:
            route.authorizer = app.default_authorizer
        if route.authorizer == "NONE":
            route.authorizer = None
    return app
