"""docker-compose.yml, checked without Docker (a fresh machine has the docker client, not the compose
plugin or an engine): its structure, and that its servers sit where goodsdrop/settings.py looks for
them by default (ports, database name and credentials), so `docker compose up` can replace
`make up`'s servers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from goodsdrop_local.template import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICE_KEYS = {"image", "command", "environment", "ports", "healthcheck", "volumes", "depends_on", "restart"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period"}


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with no variable set: the default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def published(service: str) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each `ports` entry."""
    ports = []
    for entry in COMPOSE["services"][service]["ports"]:
        address, host, container = interpolate(entry).split(":")
        ports.append((address, int(host), int(container)))
    return ports


@pytest.fixture(scope="module")
def defaults() -> dict:
    """goodsdrop.settings with nothing set (no port offset), as a stack without make up sees it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOODSDROP_", "AWS_"))}
    code = ("import dataclasses, json; from goodsdrop.settings import load; "
            "print(json.dumps(dataclasses.asdict(load())))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                            env={**env, "PYTHONPATH": str(REPO_ROOT / "layers" / "common")})
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                            env={**env, "PYTHONPATH": str(REPO_ROOT / "layers" / "common"),
                                 "GOODSDROP_AWS_TARGET": "localstack"})
    settings["localstack_endpoint"] = json.loads(result.stdout)["aws_endpoint_url"]
    return settings


def test_structure():
    assert set(COMPOSE) <= {"name", "services", "volumes", "networks"}
    assert COMPOSE["name"] == "goodsdrop"
    assert set(COMPOSE["services"]) == {"redis", "mysql", "kafka", "localstack"}
    for name, service in COMPOSE["services"].items():
        assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        assert isinstance(service["image"], str) and service["image"], name
        assert set(service["healthcheck"]) <= HEALTHCHECK_KEYS and service["healthcheck"]["test"][0] in {
            "CMD", "CMD-SHELL"}, name
        assert all(isinstance(v, str | int) for v in (service.get("environment") or {}).values()), name
        for address, host, container in published(name):
            assert address == "127.0.0.1", f"{name}: publish on loopback only"
            assert 0 < host < 65536 and 0 < container < 65536


def test_ports_are_the_settings_defaults(defaults):
    assert [(p[1], p[2]) for p in published("redis")] == [(defaults["redis_port"], 6379)]
    assert defaults["redis_url"] == f"redis://127.0.0.1:{defaults['redis_port']}/0"
    assert [(p[1], p[2]) for p in published("mysql")] == [(defaults["mysql_port"], 3306)]
    assert [p[1] for p in published("kafka")] == [defaults["kafka_port"]]
    assert defaults["localstack_endpoint"] == f"http://127.0.0.1:{published('localstack')[0][1]}"


def test_mysql_database_and_credentials_are_the_settings_defaults(defaults):
    env = {k: interpolate(str(v)) for k, v in COMPOSE["services"]["mysql"]["environment"].items()}
    assert env["MYSQL_DATABASE"] == defaults["mysql_database"]
    assert env["MYSQL_USER"] == defaults["mysql_user"]
    assert env["MYSQL_PASSWORD"] == defaults["mysql_password"]


def test_kafka_advertises_the_host_listener_and_an_internal_one(defaults):
    env = {k: interpolate(str(v)) for k, v in COMPOSE["services"]["kafka"]["environment"].items()}
    listeners = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert listeners["PLAINTEXT"] == defaults["kafka_bootstrap"]
    assert listeners["INTERNAL"] == "kafka:19092"
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    names = {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")}
    assert names == set(protocols) and set(listeners) <= names
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in names


def test_localstack_lambdas_join_the_compose_network():
    env = COMPOSE["services"]["localstack"]["environment"]
    assert env["LAMBDA_DOCKER_NETWORK"] == f"{COMPOSE['name']}_default"
