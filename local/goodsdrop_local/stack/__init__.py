"""The project-owned local servers: Redis, MariaDB, Kafka (KRaft), moto and the local runtime.

One module per server (`redis_server` with the cluster formation, `mariadb_server`, `kafka_server`,
`moto_server`, `runtime_server`), their common base (`server`: a detached process, the stack's
directories) and the commands (`cli`: up, down, reset, status; ``python -m goodsdrop_local.stack``).
"""

from goodsdrop_local.stack.cli import ALL, RUNTIME, SERVERS, ensure_up, is_healthy, main, reset, status, stop_all
from goodsdrop_local.stack.kafka_server import KAFKA_LIBS, KafkaServer, fetch_kafka_libs
from goodsdrop_local.stack.mariadb_server import MariaDBServer
from goodsdrop_local.stack.moto_server import MotoServer
from goodsdrop_local.stack.redis_server import CLUSTER_NODES, RedisClusterNode, RedisServer, form_redis_cluster
from goodsdrop_local.stack.runtime_server import LocalRuntime
from goodsdrop_local.stack.server import LOG_DIR, STACK_DIR, Server, StackError, stack_lock

__all__ = ["ALL", "CLUSTER_NODES", "KAFKA_LIBS", "LOG_DIR", "RUNTIME", "SERVERS", "STACK_DIR", "KafkaServer",
           "LocalRuntime", "MariaDBServer", "MotoServer", "RedisClusterNode", "RedisServer", "Server", "StackError",
           "ensure_up", "fetch_kafka_libs", "form_redis_cluster", "is_healthy", "main", "reset", "stack_lock",
           "status", "stop_all"]
