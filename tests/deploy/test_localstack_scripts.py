"""infra/localstack/ can't run here (no Docker engine): its scripts are checked statically. Their
dry runs print the exact commands, which must agree with the template (every required Parameter
given, SAM accepts the overrides), docker-compose.yml (services, credentials, the internal Kafka
listener) and the settings defaults (JWT parameter, mail sender)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
import yaml

from goodsdrop_local.template import REPO_ROOT, TEMPLATE_PATH, _CfnLoader

INIT = REPO_ROOT / "infra" / "localstack" / "init.sh"
DEPLOY = REPO_ROOT / "infra" / "localstack" / "deploy.sh"
TEMPLATE = yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("GOODSDROP_", "AWS_", "LOCALSTACK_"))}


def _dry_run(script, **env: str) -> list[list[str]]:
    result = subprocess.run([str(script), "--dry-run"], capture_output=True, text=True, timeout=30,
                            env={**CLEAN_ENV, **env})
    assert result.returncode == 0, result.stdout + result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines() if line and not line.startswith("#")]


def _settings_default(name: str) -> str:
    code = f"from goodsdrop.settings import load; print(load().{name})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                            env={**CLEAN_ENV, "PYTHONPATH": str(REPO_ROOT / "layers" / "common")})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("script", [INIT, DEPLOY])
def test_scripts_are_executable_and_refuse_unknown_arguments(script):
    assert os.access(script, os.X_OK)
    result = subprocess.run([str(script), "--bogus"], capture_output=True, text=True, timeout=30, env=CLEAN_ENV)
    assert result.returncode == 2 and "usage" in result.stderr


def test_init_creates_the_jwt_key_and_the_mail_identity_the_stack_reads():
    commands = _dry_run(INIT)
    put, verify = commands[0], commands[1]
    assert put[:3] == ["awslocal", "ssm", "put-parameter"]
    assert put[put.index("--name") + 1] == TEMPLATE["Parameters"]["JwtParameterName"]["Default"]
    assert put[put.index("--name") + 1] == _settings_default("jwt_parameter_name")
    assert put[put.index("--type") + 1] == "SecureString"
    assert verify[:3] == ["awslocal", "ses", "verify-email-identity"]
    assert verify[-1] == _settings_default("mail_sender")
    # From the host, through any AWS CLI given in $AWS.
    (host_put, _) = _dry_run(INIT, AWS="aws --endpoint-url http://localhost:4566")[:2]
    assert host_put[:4] == ["aws", "--endpoint-url", "http://localhost:4566", "ssm"]


def test_compose_runs_init_as_the_localstack_ready_hook():
    volumes = COMPOSE["services"]["localstack"]["volumes"]
    assert "./infra/localstack/init.sh:/etc/localstack/init/ready.d/goodsdrop.sh:ro" in volumes
    assert "/var/run/docker.sock:/var/run/docker.sock" in volumes


@pytest.fixture(scope="module")
def deploy_commands() -> list[list[str]]:
    return _dry_run(DEPLOY)


def _sam_deploy(commands: list[list[str]]) -> list[str]:
    (deploy,) = [c for c in commands if "deploy" in c and c[c.index("deploy") - 1].endswith("/sam")]
    return deploy


def _overrides(deploy: list[str]) -> dict[str, str]:
    values = deploy[deploy.index("--parameter-overrides") + 1:]
    return dict(value.split("=", 1) for value in values)


def test_deploy_builds_prepares_deploys_and_prints_the_outputs_in_order(deploy_commands):
    steps = [" ".join(c) for c in deploy_commands]
    order = ["goodsdrop_local.bootstrap", "scripts/sam_build.sh", " deploy ", "list stack-outputs"]
    positions = [next(i for i, step in enumerate(steps) if marker in step) for marker in order]
    assert positions == sorted(positions), steps
    build = next(c for c in deploy_commands if c[0].endswith("scripts/sam_build.sh"))
    deploy = _sam_deploy(deploy_commands)
    assert deploy[deploy.index("--template-file") + 1] == f"{build[1]}/template.yaml"
    assert "CAPABILITY_IAM" in deploy and "--resolve-s3" in deploy and "--no-confirm-changeset" in deploy
    env = dict(arg.split("=", 1) for arg in deploy[1:deploy.index(next(a for a in deploy if a.endswith("/sam")))])
    assert env["AWS_ENDPOINT_URL"] == "http://localhost:4566"
    assert env["AWS_ENDPOINT_URL_S3"].endswith(".localstack.cloud:4566")


def test_deploy_gives_every_required_parameter_and_only_template_parameters(deploy_commands):
    overrides = _overrides(_sam_deploy(deploy_commands))
    parameters = TEMPLATE["Parameters"]
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    assert required <= set(overrides), f"missing: {sorted(required - set(overrides))}"
    assert set(overrides) <= set(parameters), f"unknown: {sorted(set(overrides) - set(parameters))}"


def test_sam_accepts_the_parameter_overrides(deploy_commands):
    values = _sam_deploy(deploy_commands)
    values = values[values.index("--parameter-overrides") + 1:]
    code = ("import json, sys; from samcli.cli.types import CfnParameterOverridesType as T; "
            "print(json.dumps(T().convert(tuple(sys.argv[1:]), None, None)))")
    result = subprocess.run([str(REPO_ROOT / ".venv-sam" / "bin" / "python"), "-c", code, *values],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == _overrides(_sam_deploy(deploy_commands))


def test_deploy_points_the_functions_at_the_compose_services(deploy_commands):
    overrides = _overrides(_sam_deploy(deploy_commands))
    services = COMPOSE["services"]
    mysql = services["mysql"]["environment"]
    assert overrides["RedisUrl"].startswith("redis://redis:6379/")
    assert overrides["MysqlHost"] == "mysql" and overrides["MysqlPort"] == "3306"
    assert overrides["MysqlUser"] == mysql["MYSQL_USER"].split(":-")[1].rstrip("}")
    assert overrides["MysqlPassword"] == mysql["MYSQL_PASSWORD"].split(":-")[1].rstrip("}")
    assert overrides["MysqlDatabase"] == mysql["MYSQL_DATABASE"].split(":-")[1].rstrip("}")
    assert f"INTERNAL://{overrides['KafkaBootstrapServers']}" in services["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"]
    assert overrides["AwsEndpointUrl"] == "http://localstack:4566"
    assert overrides["MailSender"] == _settings_default("mail_sender")
    assert "LiveStockImageUri" not in overrides  # no image: no ECS service (LocalStack Pro only)
    with_image = _overrides(_sam_deploy(_dry_run(DEPLOY, GOODSDROP_LIVE_STOCK_IMAGE="000000000000.dkr.ecr/x:1")))
    assert with_image["LiveStockImageUri"] == "000000000000.dkr.ecr/x:1"
