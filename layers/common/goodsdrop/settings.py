"""The one configuration loader.

Every setting comes from an environment variable (SAM Globals / function Environment in AWS,
the local runtime or the shell locally) and is read once, at import. Defaults are the local
stack's: project-owned servers on ports that do not clash with system-wide ones.
`GOODSDROP_PORT_OFFSET` shifts every default port at once, so two checkouts can run side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_OFFSET = int(os.environ.get("GOODSDROP_PORT_OFFSET", "0"))


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default + _OFFSET)))


def _str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def _flag(name: str) -> bool:
    """An on/off setting: "1", "true", "yes" or "on" (any case) turn it on; unset or anything else is off."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """All configuration of GoodsDrop, resolved from the environment."""

    # Ports of the local stack (also used to build the URLs below when those are not given).
    redis_port: int
    mysql_port: int
    kafka_port: int
    kafka_controller_port: int
    aws_port: int
    api_port: int
    stream_port: int

    redis_url: str
    redis_cluster: bool  # REDIS_URL names any node of a Redis Cluster; clients discover the rest
    mysql_host: str
    mysql_user: str
    mysql_password: str
    mysql_database: str
    # PEM bundle of the CA that signs MySQL's server certificate (RDS/Aurora: Amazon's RDS bundle).
    # Set: TLS required, certificate and host name verified. Empty (the local stack): no TLS at all.
    mysql_tls_ca: str
    kafka_bootstrap: str
    aws_endpoint_url: str  # one endpoint for every AWS API: moto server, LocalStack, or "" for AWS itself
    aws_target: str  # "moto" | "localstack" | "aws"
    aws_region: str

    topic_prefix: str  # lets tests and parallel stacks share one broker without colliding
    stock_strategy: str  # "lua" | "mysql_lock" | "redis_lock" (benchmark comparison)
    check_script_slots: bool  # tests: refuse a Lua script whose KEYS span hash slots (goodsdrop.scripts)
    reservation_ttl_seconds: int
    jwt_parameter_name: str
    jwt_key_refresh_seconds: float  # how often a container fetches the signing keys again
    mail_sender: str
    public_base_url: str
    storefront_url: str  # where the storefront is served (the verification mail's link lands there)
    # The one origin whose pages may call the API and the stream from a browser ("*": any). The
    # functions and the SSE container send it; the template's gateway responses and CORS preflight too.
    allowed_origin: str

    # Admission control on POST /orders (goodsdrop.ratelimit, goodsdrop.admission). A bucket
    # refills `rate` tokens per second up to `burst`; a rate of 0 turns that bucket off.
    order_rate_per_member: float
    order_burst_per_member: int
    order_rate_per_ip: float  # higher than a member's: many buyers share one NAT
    order_burst_per_ip: int
    waiting_room_threshold: int  # order attempts per second on one product that open its room; 0: never
    waiting_room_admit_rate: float  # tickets admitted per second once the room is open
    waiting_room_initial_batch: int  # tickets admitted the moment the room opens
    waiting_room_open_seconds: int  # the room closes this long after demand fell below the threshold
    waiting_room_pass_seconds: int  # how long an admitted buyer may order without queueing again
    sign_ups_per_ip_per_hour: int  # POST /members per source network (many people share a NAT)
    return_window_days: int  # a delivered line may be asked back for this many days after its delivery


def load() -> Settings:
    """Read every setting from the environment (defaults: the local stack)."""
    redis_port = _port("GOODSDROP_REDIS_PORT", 6390)
    mysql_port = _port("GOODSDROP_MYSQL_PORT", 3317)
    kafka_port = _port("GOODSDROP_KAFKA_PORT", 9093)
    aws_port = _port("GOODSDROP_AWS_PORT", 5010)
    api_port = _port("GOODSDROP_API_PORT", 3000)
    # Deployed, Lambda and ECS set AWS_EXECUTION_ENV: AWS itself (or the endpoint LocalStack gives
    # its Lambdas); anywhere else the project's moto server.
    target = _str("GOODSDROP_AWS_TARGET", "aws" if os.environ.get("AWS_EXECUTION_ENV") else "moto")
    return Settings(
        redis_port=redis_port,
        mysql_port=mysql_port,
        kafka_port=kafka_port,
        kafka_controller_port=_port("GOODSDROP_KAFKA_CONTROLLER_PORT", 9094),
        aws_port=aws_port,
        api_port=api_port,
        stream_port=_port("GOODSDROP_STREAM_PORT", 3001),
        redis_url=_str("GOODSDROP_REDIS_URL", f"redis://127.0.0.1:{redis_port}/0"),
        redis_cluster=_flag("GOODSDROP_REDIS_CLUSTER"),
        mysql_host=_str("GOODSDROP_MYSQL_HOST", "127.0.0.1"),
        mysql_user=_str("GOODSDROP_MYSQL_USER", "goodsdrop"),
        mysql_password=_str("GOODSDROP_MYSQL_PASSWORD", "goodsdrop"),
        mysql_database=_str("GOODSDROP_MYSQL_DATABASE", "goodsdrop"),
        mysql_tls_ca=_str("GOODSDROP_MYSQL_TLS_CA", ""),
        kafka_bootstrap=_str("GOODSDROP_KAFKA_BOOTSTRAP", f"127.0.0.1:{kafka_port}"),
        aws_endpoint_url=_str(
            "GOODSDROP_AWS_ENDPOINT_URL",
            "" if target == "aws" else f"http://127.0.0.1:{aws_port if target == 'moto' else 4566}",
        ),
        aws_target=target,
        aws_region=_str("AWS_REGION", _str("AWS_DEFAULT_REGION", "ap-northeast-2")),
        topic_prefix=_str("GOODSDROP_TOPIC_PREFIX", "goodsdrop."),
        stock_strategy=_str("GOODSDROP_STOCK_STRATEGY", "lua"),
        check_script_slots=_flag("GOODSDROP_CHECK_SCRIPT_SLOTS"),
        reservation_ttl_seconds=_int("GOODSDROP_RESERVATION_TTL_SECONDS", 600),
        jwt_parameter_name=_str("GOODSDROP_JWT_PARAMETER", "/goodsdrop/jwt-signing-key"),
        jwt_key_refresh_seconds=_float("GOODSDROP_JWT_KEY_REFRESH_SECONDS", 60.0),
        mail_sender=_str("GOODSDROP_MAIL_SENDER", "no-reply@goodsdrop.local"),
        public_base_url=_str("GOODSDROP_PUBLIC_BASE_URL", f"http://127.0.0.1:{api_port}"),
        # The template's default is empty: the storefront served by the API's own origin (as locally).
        storefront_url=(_str("GOODSDROP_STOREFRONT_URL", "") or _str("GOODSDROP_PUBLIC_BASE_URL", "")
                        or f"http://127.0.0.1:{api_port}"),
        allowed_origin=_str("GOODSDROP_ALLOWED_ORIGIN", "*"),
        order_rate_per_member=_float("GOODSDROP_ORDER_RATE_PER_MEMBER", 5.0),
        order_burst_per_member=_int("GOODSDROP_ORDER_BURST_PER_MEMBER", 10),
        order_rate_per_ip=_float("GOODSDROP_ORDER_RATE_PER_IP", 50.0),
        order_burst_per_ip=_int("GOODSDROP_ORDER_BURST_PER_IP", 200),
        waiting_room_threshold=_int("GOODSDROP_WAITING_ROOM_THRESHOLD", 0),
        waiting_room_admit_rate=_float("GOODSDROP_WAITING_ROOM_ADMIT_RATE", 20.0),
        waiting_room_initial_batch=_int("GOODSDROP_WAITING_ROOM_INITIAL_BATCH", 50),
        waiting_room_open_seconds=_int("GOODSDROP_WAITING_ROOM_OPEN_SECONDS", 60),
        waiting_room_pass_seconds=_int("GOODSDROP_WAITING_ROOM_PASS_SECONDS", 120),
        sign_ups_per_ip_per_hour=_int("GOODSDROP_SIGN_UPS_PER_IP_PER_HOUR", 30),
        return_window_days=_int("GOODSDROP_RETURN_WINDOW_DAYS", 14),
    )


settings: Settings = load()
