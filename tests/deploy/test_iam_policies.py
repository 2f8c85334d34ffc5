"""Least privilege, checked for every function: each role grants exactly the AWS API calls its code
can make (found by following the handler's calls through the common layer to `aws_client(svc).op`),
scoped to resources, and nothing else beyond logs, the VPC and the Kafka pollers' access.

The template is translated by aws-sam-translator (in .venv-sam), so SAM policy templates are
judged by the statements they expand to."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from goodsdrop_local.template import REPO_ROOT, TEMPLATE_PATH, _CfnLoader

LAYER = REPO_ROOT / "layers" / "common" / "goodsdrop"
BASE_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    # SAM attaches it to every function with `Tracing: Active` (the template's Globals): the X-Ray
    # segments the Powertools Tracer sends, nothing else.
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
# boto3 client name → IAM service prefix, where they differ.
IAM_PREFIX = {"sesv2": "ses", "stepfunctions": "states", "logs": "logs"}


# ---- what the code calls ---------------------------------------------------------------------

Node = tuple[str, str]  # (module, function or Class.method or "<module>")


def _api_action(service: str, operation: str) -> str:
    return f"{IAM_PREFIX.get(service, service)}:{''.join(part.title() for part in operation.split('_'))}"


class _Module:
    """One Python file: its functions, what each calls, and the AWS operations each makes."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.imports: dict[str, tuple[str, str | None]] = {}  # local name → (module, attribute or None)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("goodsdrop"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if (LAYER.parent / (target.replace(".", "/") + ".py")).is_file():  # `from goodsdrop import keys`
                        self.imports[alias.asname or alias.name] = (target, None)
                    else:
                        self.imports[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("goodsdrop"):
                        self.imports[alias.asname or alias.name] = (alias.name, None)
        self.bodies: dict[str, list[ast.AST]] = {"<module>": [n for n in self.tree.body
                                                              if not isinstance(n, ast.FunctionDef | ast.ClassDef)]}
        self.classes: dict[str, list[str]] = {}
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.bodies[node.name] = [node]
            elif isinstance(node, ast.ClassDef):
                methods = [m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
                self.classes[node.name] = [f"{node.name}.{m.name}" for m in methods]
                self.bodies[node.name] = [n for n in node.body if n not in methods]
                for method in methods:
                    self.bodies[f"{node.name}.{method.name}"] = [method]

    def _resolve(self, func: ast.expr, owner: str) -> list[Node]:
        if isinstance(func, ast.Name):
            if func.id in self.bodies:
                return [(self.name, func.id)]
            if func.id in self.imports:
                module, attribute = self.imports[func.id]
                return [(module, attribute)] if attribute else []
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            base = func.value.id
            if base in {"self", "cls"} and "." in owner:
                return [(self.name, f"{owner.split('.')[0]}.{func.attr}")]
            if base in self.imports and self.imports[base][1] is None:
                return [(self.imports[base][0], func.attr)]
        return []

    def edges(self, owner: str) -> tuple[set[Node], set[str]]:
        """What `owner` calls (in goodsdrop modules) and the AWS API actions it makes."""
        calls: set[Node] = set()
        actions: set[str] = set()
        clients: dict[str, str] = {}  # variable → service, for `ssm = aws_client("ssm")`
        for root in self.bodies[owner]:
            for node in ast.walk(root):
                if isinstance(node, ast.Assign) and (service := _aws_client_service(node.value)):
                    clients.update({t.id: service for t in node.targets if isinstance(t, ast.Name)})
            for node in ast.walk(root):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if isinstance(func, ast.Attribute):
                    service = _aws_client_service(func.value) or (
                        clients.get(func.value.id) if isinstance(func.value, ast.Name) else None)
                    if service and not func.attr.startswith("_") and func.attr != "exceptions":
                        actions.add(_api_action(service, func.attr))
                calls.update(self._resolve(func, owner))
                # Functions passed as values (callbacks, decorators' targets) count as called.
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    if isinstance(arg, ast.Name):
                        calls.update(self._resolve(arg, owner))
        if owner in self.classes:
            calls.update((self.name, m) for m in self.classes[owner])
        return calls, actions


def _aws_client_service(node: ast.AST) -> str | None:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "aws_client"
            and node.args and isinstance(node.args[0], ast.Constant)):
        return str(node.args[0].value)
    return None


def aws_actions_of_handler(path: Path) -> set[str]:
    """Every AWS API action reachable from anything in the handler file."""
    modules: dict[str, _Module] = {"<handler>": _Module("<handler>", path)}

    def module(name: str) -> _Module | None:
        if name not in modules:
            file = LAYER.parent / (name.replace(".", "/") + ".py")
            if not file.is_file():
                file = LAYER.parent / name.replace(".", "/") / "__init__.py"
            if not file.is_file():
                return None
            modules[name] = _Module(name, file)
        return modules[name]

    queue: deque[Node] = deque(("<handler>", owner) for owner in modules["<handler>"].bodies)
    seen: set[Node] = set()
    actions: set[str] = set()
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        owner_module = module(node[0])
        if owner_module is None or node[1] not in owner_module.bodies:
            continue
        calls, found = owner_module.edges(node[1])
        actions |= found
        queue.extend(calls - seen)
        queue.append((node[0], "<module>"))  # importing a module runs its top level
    return actions


def test_the_call_analysis_finds_the_known_aws_calls():
    assert aws_actions_of_handler(REPO_ROOT / "functions" / "auth" / "authorizer.py") == {"ssm:GetParameter"}
    assert aws_actions_of_handler(REPO_ROOT / "functions" / "members" / "sign_up.py") == {"ses:SendEmail"}
    assert aws_actions_of_handler(REPO_ROOT / "functions" / "products" / "get_product.py") == set()


# ---- what the roles grant --------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _granted(role: dict[str, Any]) -> list[dict[str, Any]]:
    statements = []
    for policy in role["Properties"].get("Policies") or []:
        statements += _as_list(policy["PolicyDocument"]["Statement"])
    return statements


def test_every_function_role_grants_exactly_what_its_code_calls(cloudformation):
    resources = cloudformation["Resources"]
    functions = {lid: res for lid, res in resources.items() if res["Type"] == "AWS::Lambda::Function"}
    assert len(functions) >= 4
    template = yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)
    code_dirs = {lid: (TEMPLATE_PATH.parent / template["Resources"][lid]["Properties"]["CodeUri"]).resolve()
                 for lid in functions}
    mismatches = {}
    for lid, fn in functions.items():
        role = resources[fn["Properties"]["Role"]["Fn::GetAtt"][0]]
        module, _, _ = fn["Properties"]["Handler"].rpartition(".")
        needed = aws_actions_of_handler(code_dirs[lid] / (module.replace(".", "/") + ".py"))
        statements = _granted(role)
        granted = {action for s in statements if s["Effect"] == "Allow" for action in _as_list(s["Action"])}
        if needed != granted:
            mismatches[lid] = {"code calls": sorted(needed), "role grants": sorted(granted)}
        for statement in statements:
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in _as_list(statement["Action"])), f"{lid}: wildcard action"
            assert statement["Resource"] != "*", f"{lid}: {statement['Action']} on every resource"
        managed = set()
        for arn in role["Properties"].get("ManagedPolicyArns") or []:
            managed.add(arn if isinstance(arn, str) else arn.get("Ref"))
        assert managed - BASE_MANAGED_POLICIES <= {"KafkaConsumerPolicy"}, f"{lid}: {managed}"
    assert mismatches == {}, "roles must grant exactly the AWS calls the code makes"


def test_kafka_consumer_policy_only_describes_the_vpc_and_reads_the_sasl_secret(cloudformation):
    document = cloudformation["Resources"]["KafkaConsumerPolicy"]["Properties"]["PolicyDocument"]
    plain = [s for s in document["Statement"] if "Fn::If" not in s]
    assert {a for s in plain for a in _as_list(s["Action"])} == {
        "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"}
    (conditional,) = [s["Fn::If"] for s in document["Statement"] if "Fn::If" in s]
    assert conditional[0] == "HasKafkaSaslSecret"
    assert conditional[1]["Action"] == "secretsmanager:GetSecretValue"
    assert conditional[1]["Resource"] == {"Ref": "KafkaSaslSecretArn"}


def test_the_live_stock_task_role_grants_nothing(cloudformation):
    role = cloudformation["Resources"]["LiveStockTaskRole"]["Properties"]
    assert not role.get("Policies") and not role.get("ManagedPolicyArns")
