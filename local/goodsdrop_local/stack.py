"""The project-owned local servers: Redis, MariaDB, Kafka (KRaft), moto and the local runtime.

Usage::

    python -m goodsdrop_local.stack up [--servers-only]
    python -m goodsdrop_local.stack down
    python -m goodsdrop_local.stack reset
    python -m goodsdrop_local.stack status [--servers-only]

Everything lives under ``.stack/`` at the repository root (``GOODSDROP_STACK_DIR`` overrides it):
a data directory per server, ``logs/<server>.log`` and ``pids/<server>.pid``. Each server runs
detached in its own session, so ``down`` stops it together with whatever it spawned. Every
process started here carries ``GOODSDROP_STACK_OWNER=<stack dir>`` in its environment, which
lets ``down`` find stragglers whose pid file was lost. Ports come from :mod:`goodsdrop.settings`
(all shifted together by ``GOODSDROP_PORT_OFFSET``).

With ``GOODSDROP_REDIS_CLUSTER=1`` (``make up CLUSTER=1``) Redis is a three-master Redis Cluster
instead of one server: nodes ``redis-1``..``redis-3`` on the Redis port and the two after it, each
with its own directory under ``redis-cluster/``. The first ``up`` forms the cluster; later ones
find it formed (each node keeps its ``nodes.conf``) and only wait until every slot is served.

Tests call :func:`ensure_up` (the same as ``up``) and :func:`is_healthy`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import getpass
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from goodsdrop.settings import settings

ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = Path(os.environ.get("GOODSDROP_STACK_DIR", str(ROOT / ".stack"))).resolve()
LOG_DIR = STACK_DIR / "logs"
PID_DIR = STACK_DIR / "pids"
KAFKA_LIBS = STACK_DIR / "kafka" / "libs"
KAFKA_POM = ROOT / "infra" / "kafka" / "pom.xml"
STACK_MARK = STACK_DIR / ".goodsdrop-stack"  # proves a directory is ours before `reset` empties it
OWNER_ENV = "GOODSDROP_STACK_OWNER"
HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 20.0
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


class StackError(RuntimeError):
    """A server could not be prepared, started or stopped; the message says where to look."""


# --------------------------------------------------------------------------- process helpers


def _port_open(port: int, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=timeout):
        return True
    return False


def _proc_file(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def _alive(pid: int, marker: str = "") -> bool:
    """Whether pid runs (not a zombie) and, where /proc tells, its command line contains marker."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_file(pid, "stat")
    if stat is None:  # no /proc (macOS): trust kill(0)
        return True
    if stat.rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap our own child
        return False
    cmdline = (_proc_file(pid, "cmdline") or b"").replace(b"\0", b" ")
    return marker.encode() in cmdline


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group remains (our own exited children are reaped first)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*")] if Path("/proc").is_dir() else []


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _stop_group(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group led by pid, wait up to grace seconds, then SIGKILL it."""
    pgid = _pgid(pid)
    if pgid is None:
        return
    if pgid == os.getpgrp():  # never signal our own group: stop the process alone
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.1)
    raise StackError(f"process group {pgid} survived SIGKILL")


def _own_ancestry() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        stat = _proc_file(pid, "stat")
        if stat is None:
            break
        pid = int(stat.rsplit(b")", 1)[-1].split()[2])
    return pids


def _stray_pids() -> list[int]:
    """Processes started by this stack (marked in their environment) that are still running."""
    mark = f"{OWNER_ENV}={STACK_DIR}".encode()
    mine = _own_ancestry()
    strays = []
    for pid in _all_pids():
        environ = _proc_file(pid, "environ")
        if pid not in mine and environ and mark in environ.split(b"\0") and _alive(pid):
            strays.append(pid)
    return strays


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("    " + line for line in text)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "layers" / "common"), str(ROOT / "local"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env.update({OWNER_ENV: str(STACK_DIR), "PYTHONPATH": os.pathsep.join(paths)})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _which(*names: str, extra_dirs: tuple[str, ...] = ("/usr/sbin", "/usr/local/sbin")) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(extra_dirs))
        if found:
            return found
    raise StackError(f"{' / '.join(names)} not found; run `make install`")


def _run_logged(cmd: list[str], log_path: Path, what: str) -> None:
    """Run a one-off setup command, output appended to log_path; raise with its tail on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%F %T')} {what}: {' '.join(cmd)}\n".encode())
        log.flush()
        result = subprocess.run(
            cmd, check=False, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}); see {log_path}\n{_tail(log_path)}")


@contextlib.contextmanager
def _stack_lock() -> Iterator[None]:
    """Serialise up/down/reset between processes (e.g. several pytest workers)."""
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    with (STACK_DIR / "stack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- servers


class Server:
    """One detached process of the stack: how to prepare, start, probe and stop it."""

    name = ""
    marker = ""  # found in the process's command line; guards against a recycled pid
    start_timeout = 30.0

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports it listens on (checked free before starting)."""
        raise NotImplementedError

    @property
    def address(self) -> str:
        """Where clients reach it, for the summary."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """The command line that runs it in the foreground."""
        raise NotImplementedError

    def healthy(self) -> bool:
        """Whether it answers a real request."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Set-up before a start: data directories, config files, first-time initialisation."""

    def after_start(self) -> None:
        """Work done on every `up` once it is healthy (e.g. ensuring users)."""

    @property
    def log_path(self) -> Path:
        return LOG_DIR / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return PID_DIR / f"{self.name}.pid"

    def running_pid(self) -> int | None:
        """The pid from the pid file if that process is alive; a stale pid file is removed."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            self.pid_path.unlink(missing_ok=True)
            return None
        if _alive(pid, self.marker):
            return pid
        self.pid_path.unlink(missing_ok=True)
        return None

    def is_up(self) -> bool:
        """Running from our pid file and answering."""
        return self.running_pid() is not None and self._probe()

    def _probe(self) -> bool:
        try:
            return self.healthy()
        except Exception:  # noqa: BLE001 - any failure to answer means "not healthy yet"
            return False

    def start(self) -> str:
        """Start it unless it already runs; wait until healthy. Returns a word on what happened."""
        t0 = time.monotonic()
        pid = self.running_pid()
        if pid is not None:
            self._wait_healthy(pid, None, t0)
            self.after_start()
            return "already running"
        busy = [port for port in self.ports if _port_open(port)]
        if busy:
            raise StackError(
                f"{self.name}: port {busy[0]} is already taken by a process this stack did not "
                "start; stop it or set GOODSDROP_PORT_OFFSET"
            )
        self.prepare()
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        PID_DIR.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} start: {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=STACK_DIR,
                env=_child_env(),
                start_new_session=True,
            )
        self.pid_path.write_text(f"{proc.pid}\n")
        self._wait_healthy(proc.pid, proc, t0)
        self.after_start()
        return f"started in {time.monotonic() - t0:.1f} s"

    def _wait_healthy(self, pid: int, proc: subprocess.Popen[bytes] | None, t0: float) -> None:
        deadline = t0 + self.start_timeout
        while not self._probe():
            exited = proc.poll() is not None if proc else not _alive(pid, self.marker)
            if exited:
                code = f" with code {proc.returncode}" if proc else ""
                self.pid_path.unlink(missing_ok=True)
                raise StackError(
                    f"{self.name} exited{code} while starting; see {self.log_path}\n"
                    f"{_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name} did not become healthy within {self.start_timeout:.0f} s; "
                    f"see {self.log_path}\n{_tail(self.log_path)}"
                )
            time.sleep(0.2)

    def stop(self) -> bool:
        """Stop it (and its process group) if running; remove the pid file. True if it ran."""
        pid = self.running_pid()
        if pid is not None:
            _stop_group(pid)
        self.pid_path.unlink(missing_ok=True)
        return pid is not None


class RedisServer(Server):
    """Redis with an append-only file (fsync every second) and no RDB snapshots."""

    name = "redis"
    marker = "redis-server"
    start_timeout = 20.0
    data_dir = STACK_DIR / "redis"

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.redis_port,)

    @property
    def address(self) -> str:
        return f"redis://{HOST}:{settings.redis_port}/0"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            _which("redis-server"),
            "--port", str(settings.redis_port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--set-proc-title", "no",  # keep the full command line (and the stack dir) visible
        ]  # fmt: skip

    def healthy(self) -> bool:
        import redis

        client = redis.Redis(host=HOST, port=settings.redis_port, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()


class RedisClusterNode(Server):
    """One master of the local Redis Cluster: cluster mode on, its own directory and nodes.conf.

    Node i listens on the Redis port + i (and, as every cluster node, on that port + 10000 for
    the cluster bus), so GOODSDROP_PORT_OFFSET keeps stacks apart here too, and REDIS_URL's
    default (the Redis port) names the first node.
    """

    marker = "redis-server"
    start_timeout = 20.0

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"redis-{index + 1}"
        self.data_dir = STACK_DIR / "redis-cluster" / self.name

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def port(self) -> int:
        return settings.redis_port + self.index

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.port + CLUSTER_BUS_PORT_SHIFT)

    @property
    def address(self) -> str:
        return f"redis://{HOST}:{self.port} (cluster)"

    def command(self) -> list[str]:
        return [
            _which("redis-server"),
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",  # the node's view of the cluster, kept across restarts
            "--cluster-node-timeout", "5000",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--set-proc-title", "no",
        ]  # fmt: skip

    def healthy(self) -> bool:
        import redis

        client = redis.Redis(host=HOST, port=self.port, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def cluster_info(self) -> dict[str, str]:
        """This node's CLUSTER INFO (cluster_state, cluster_slots_ok, cluster_known_nodes, ...)."""
        import redis

        client = redis.Redis(host=HOST, port=self.port, socket_timeout=2, decode_responses=True)
        try:
            return {key: str(value) for key, value in client.cluster("INFO").items()}
        finally:
            client.close()


CLUSTER_BUS_PORT_SHIFT = 10000  # Redis's fixed offset of the cluster bus port
CLUSTER_NODES = tuple(RedisClusterNode(index) for index in range(3))
CLUSTER_SLOTS = 16384
CLUSTER_FORM_TIMEOUT = 30.0


def _cluster_formed(info: dict[str, str]) -> bool:
    """Whether a node sees the whole cluster: state ok, every slot served, every node known."""
    return (info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == str(CLUSTER_SLOTS)
            and info.get("cluster_known_nodes") == str(len(CLUSTER_NODES)))


def _cluster_health() -> str:
    """'ok' when every node sees the whole cluster, else what the first node that does not says."""
    for node in CLUSTER_NODES:
        try:
            info = node.cluster_info()
        except Exception as err:  # noqa: BLE001 - any failure to answer is reported as such
            return f"{node.name}: {type(err).__name__}"
        if not _cluster_formed(info):
            return (f"{node.name}: state {info.get('cluster_state')}, {info.get('cluster_slots_ok')} slots ok, "
                    f"{info.get('cluster_known_nodes')} nodes known")
    return "ok"


def form_redis_cluster() -> str:
    """Join the running nodes into one cluster unless they already form one; wait until it serves every slot.

    `redis-cli --cluster create` runs only when no node has a slot yet (a fresh stack); a restarted
    stack reloads each node's nodes.conf and re-forms by itself. Returns a word on what happened.
    """
    t0 = time.monotonic()
    infos = [node.cluster_info() for node in CLUSTER_NODES]
    if all(_cluster_formed(info) for info in infos):
        return "already formed"
    fresh = all(info.get("cluster_slots_assigned") == "0" and info.get("cluster_known_nodes") == "1"
                for info in infos)
    what = "re-formed"
    if fresh:
        _run_logged(
            [_which("redis-cli"), "--cluster", "create", *(f"{HOST}:{node.port}" for node in CLUSTER_NODES),
             "--cluster-replicas", "0", "--cluster-yes"],
            LOG_DIR / "redis-cluster.log",
            "redis-cli --cluster create",
        )
        what = "formed"
    deadline = t0 + CLUSTER_FORM_TIMEOUT
    while (health := _cluster_health()) != "ok":
        if time.monotonic() > deadline:
            raise StackError(
                f"the Redis Cluster did not become ready within {CLUSTER_FORM_TIMEOUT:.0f} s ({health}); "
                f"see {LOG_DIR / 'redis-cluster.log'} and the node logs; `make reset` starts it afresh"
            )
        time.sleep(0.2)
    return f"{what} in {time.monotonic() - t0:.1f} s"


class MariaDBServer(Server):
    """MariaDB with its own data directory; ensures the application database and user."""

    name = "mariadb"
    marker = "mariadbd"
    start_timeout = 60.0
    base_dir = STACK_DIR / "mariadb"
    data_dir = base_dir / "data"

    @property
    def socket_path(self) -> Path:
        path = self.base_dir / "mysqld.sock"
        if len(str(path)) < 100:  # AF_UNIX paths are limited to 107 bytes
            return path
        digest = hashlib.sha256(str(STACK_DIR).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"goodsdrop-{digest}-mysqld.sock"

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.mysql_port,)

    @property
    def address(self) -> str:
        s = settings
        return f"mysql://{s.mysql_user}@{HOST}:{s.mysql_port}/{s.mysql_database}"

    def prepare(self) -> None:
        if (self.data_dir / "mysql").is_dir():
            return
        fresh = self.base_dir / "data.new"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        _run_logged(
            [
                _which("mariadb-install-db", "mysql_install_db"),
                "--no-defaults",
                f"--datadir={fresh}",
                f"--user={getpass.getuser()}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            self.log_path,
            "mariadb-install-db",
        )
        shutil.rmtree(self.data_dir, ignore_errors=True)
        fresh.rename(self.data_dir)

    def command(self) -> list[str]:
        return [
            _which("mariadbd", "mysqld"),
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--port={settings.mysql_port}",
            f"--bind-address={HOST}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.base_dir / 'mariadbd.pid'}",
            f"--user={getpass.getuser()}",
            "--innodb-buffer-pool-size=256M",
            "--max-connections=500",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]

    def _root(self):  # pymysql is imported lazily, so no return annotation
        import pymysql

        return pymysql.connect(
            unix_socket=str(self.socket_path), user="root", connect_timeout=2, autocommit=True
        )

    def healthy(self) -> bool:
        if not _port_open(settings.mysql_port):
            return False
        with self._root() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)

    def after_start(self) -> None:
        """Ensure the database and the application user (for '%' and 'localhost')."""
        s = settings
        for name in (s.mysql_database, s.mysql_user):
            if not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise StackError(f"refusing unusual MySQL identifier {name!r}")
        db = s.mysql_database
        with self._root() as conn, conn.cursor() as cur:
            cur.execute("SELECT host FROM mysql.user WHERE user = ''")
            for (host,) in cur.fetchall():  # anonymous users would shadow ours on localhost
                cur.execute("DROP USER ''@%s", (host,))
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{db}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            for host in ("%", "localhost"):
                account = (s.mysql_user, host)
                password = (*account, s.mysql_password)
                cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", password)
                cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", password)
                cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO %s@%s", account)
                # also `<db>_anything` (e.g. a separate test database)
                cur.execute(f"GRANT ALL PRIVILEGES ON `{db}\\_%%`.* TO %s@%s", account)


class KafkaServer(Server):
    """A single-node Kafka in KRaft mode (combined broker and controller), jars from Maven."""

    name = "kafka"
    marker = "kafka.Kafka"
    start_timeout = 90.0
    base_dir = STACK_DIR / "kafka"
    data_dir = base_dir / "data"
    properties = base_dir / "server.properties"
    log4j = base_dir / "log4j.properties"
    # Stable, so the formatted storage stays valid across restarts (22 chars of base64).
    cluster_id = base64.urlsafe_b64encode(uuid.uuid5(uuid.NAMESPACE_DNS, "goodsdrop.local").bytes)

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.kafka_port, settings.kafka_controller_port)

    @property
    def address(self) -> str:
        return f"{HOST}:{settings.kafka_port}"

    def prepare(self) -> None:
        fetch_kafka_libs()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port, controller = settings.kafka_port, settings.kafka_controller_port
        self.properties.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                "controller.listener.names=CONTROLLER",
                f"controller.quorum.voters=1@{HOST}:{controller}",
                f"log.dirs={self.data_dir}",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "min.insync.replicas=1",
                "num.partitions=3",
                "auto.create.topics.enable=true",
                "group.initial.rebalance.delay.ms=0",
            ]) + "\n"
        )  # fmt: skip
        self.log4j.write_text(
            "log4j.rootLogger=INFO, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaConfig=WARN\n"
            "log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN\n"
            "log4j.logger.state.change.logger=WARN\n"
        )
        if not (self.data_dir / "meta.properties").exists():
            _run_logged(
                [*self._java(), "kafka.tools.StorageTool", "format",
                 "-t", self.cluster_id.decode().rstrip("="), "-c", str(self.properties)],
                self.log_path,
                "kafka storage format",
            )  # fmt: skip

    def _java(self) -> list[str]:
        return [
            _which("java"),
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j}",
            "-cp",
            f"{KAFKA_LIBS}/*",
        ]

    def command(self) -> list[str]:
        java = self._java()
        return [java[0], "-Xms256m", "-Xmx512m", *java[1:], "kafka.Kafka", str(self.properties)]

    def healthy(self) -> bool:
        if not _port_open(settings.kafka_port):
            return False
        from kafka import KafkaAdminClient

        quiet = logging.getLogger("kafka")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # connection errors while it boots are expected
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.address,
                client_id="goodsdrop-stack-probe",
                request_timeout_ms=5000,
                api_version_auto_timeout_ms=3000,
            )
            try:
                admin.list_topics()
                return True
            finally:
                admin.close()
        finally:
            quiet.setLevel(level)


class MotoServer(Server):
    """moto's server: one local endpoint for every AWS API the functions use (SSM, SES, ...)."""

    name = "moto"
    marker = "moto.server"
    start_timeout = 30.0

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.aws_port,)

    @property
    def address(self) -> str:
        return f"http://{HOST}:{settings.aws_port}"

    def command(self) -> list[str]:
        return [PYTHON, "-m", "moto.server", "-H", HOST, "-p", str(settings.aws_port)]

    def healthy(self) -> bool:
        return _http_ok(f"{self.address}/moto-api/")


class LocalRuntime(Server):
    """The local runtime (API Gateway + Lambda + Kafka mappings + SSE emulation)."""

    name = "runtime"
    marker = "goodsdrop_local"
    start_timeout = 60.0

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.api_port, settings.stream_port)

    @property
    def address(self) -> str:
        return f"http://{HOST}:{settings.api_port} (stream :{settings.stream_port})"

    # What the runtime loads once and keeps: a change here means a running runtime serves old code.
    CODE = ("functions", "layers/common", "lua", "local/goodsdrop_local", "containers", "infra/template.yaml")

    def command(self) -> list[str]:
        return [PYTHON, "-m", "goodsdrop_local", "serve"]

    def healthy(self) -> bool:
        return _http_ok(f"http://{HOST}:{settings.api_port}/health")

    @property
    def code_path(self) -> Path:
        return PID_DIR / f"{self.name}.code"

    def code_fingerprint(self) -> str:
        """A digest of the names, sizes and mtimes of the files the runtime serves."""
        digest = hashlib.sha256()
        for top in self.CODE:
            root = ROOT / top
            for path in sorted([root] if root.is_file() else root.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    stat = path.stat()
                    digest.update(f"{path.relative_to(ROOT)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def start(self) -> str:
        """Start the runtime; one that serves older code than the checkout's (a pull, an edit) is restarted."""
        fingerprint = self.code_fingerprint()
        stale = self.running_pid() is not None and (not self.code_path.exists() or
            self.code_path.read_text().strip() != fingerprint)
        if stale:
            self.stop()
        state = super().start()
        self.code_path.write_text(fingerprint + "\n")
        return "restarted: the code changed" if stale else state


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our own http:// URLs
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


SINGLE_REDIS = RedisServer()
# Redis as configured: one server, or the three nodes of a cluster (GOODSDROP_REDIS_CLUSTER=1).
REDIS_SERVERS: tuple[Server, ...] = CLUSTER_NODES if settings.redis_cluster else (SINGLE_REDIS,)
OTHER_REDIS_SERVERS: tuple[Server, ...] = (SINGLE_REDIS,) if settings.redis_cluster else CLUSTER_NODES
SERVERS: tuple[Server, ...] = (*REDIS_SERVERS, MariaDBServer(), KafkaServer(), MotoServer())
RUNTIME = LocalRuntime()
ALL: tuple[Server, ...] = (*SERVERS, RUNTIME)
# What `down` stops: whichever Redis kind this stack directory ran, whatever is configured now.
EVERY_SERVER: tuple[Server, ...] = (*OTHER_REDIS_SERVERS, *ALL)


def fetch_kafka_libs() -> None:
    """Copy the Kafka jars from Maven into .stack/kafka/libs unless the pom is unchanged."""
    digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
    stamp = KAFKA_LIBS / ".pom.sha256"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    fresh = KAFKA_LIBS.with_name("libs.new")
    shutil.rmtree(fresh, ignore_errors=True)
    _run_logged(
        [_which("mvn"), "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={fresh}"],
        LOG_DIR / "kafka.log",
        "fetch kafka jars",
    )  # fmt: skip
    (fresh / ".pom.sha256").write_text(digest + "\n")
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    fresh.rename(KAFKA_LIBS)


# --------------------------------------------------------------------------- commands


def _row(server: Server, state: str) -> str:
    pid = server.running_pid()
    return f"  {server.name:<8} {pid or '-':>8}  {server.address:<44} {state}"


def _refuse_other_redis_kind() -> None:
    """Stop `up` from starting one Redis kind while this stack directory runs the other."""
    running = [server.name for server in OTHER_REDIS_SERVERS if server.running_pid() is not None]
    if running:
        now, wanted = ("one Redis", "a Redis Cluster") if settings.redis_cluster else ("a Redis Cluster", "one Redis")
        raise StackError(f"this stack runs {now} ({', '.join(running)}) but {wanted} is configured "
                         f"(GOODSDROP_REDIS_CLUSTER); run `make down` first")


def ensure_up(servers_only: bool = False) -> None:
    """Start whatever is not running (idempotent), bootstrap, start the runtime; print a table."""
    with _stack_lock():
        STACK_MARK.touch()
        _refuse_other_redis_kind()
        print(f"GoodsDrop stack in {STACK_DIR}")
        print(f"  {'server':<8} {'pid':>8}  {'address':<44} state")
        for server in SERVERS:
            print(_row(server, server.start()), flush=True)
            if server is CLUSTER_NODES[-1]:  # every node runs: join them (once) and wait for all slots
                print(f"  {'cluster':<8} {'':>8}  {f'{len(CLUSTER_NODES)} masters, {CLUSTER_SLOTS} slots':<44} "
                      f"{form_redis_cluster()}", flush=True)
        if servers_only:
            return
        t0 = time.monotonic()
        from goodsdrop_local import bootstrap

        bootstrap.run()
        print(f"  {'bootstrap':<18}{'':<44} done in {time.monotonic() - t0:.1f} s", flush=True)
        print(_row(RUNTIME, RUNTIME.start()), flush=True)


def stop_all() -> None:
    """Stop the runtime and every server (reverse order), then any straggler; idempotent."""
    with _stack_lock():
        for server in reversed(EVERY_SERVER):
            if server.stop():
                print(f"  stopped {server.name}")
        strays = _stray_pids()
        for pid in strays:
            _stop_group(pid, grace=5.0)
        if strays:
            print(f"  stopped {len(strays)} straggler process(es): {strays}")
        left = _stray_pids()
        if left:
            raise StackError(f"processes still running after down: {left}")


def reset() -> None:
    """Stop everything and delete all state except the downloaded Kafka jars."""
    stop_all()
    if not STACK_DIR.exists():
        return
    if not STACK_MARK.exists():
        raise StackError(f"{STACK_DIR} has no {STACK_MARK.name}; not deleting a directory I did not make")
    keep = {KAFKA_LIBS, STACK_MARK, STACK_DIR / "stack.lock"}
    for path in [*STACK_DIR.iterdir(), *(STACK_DIR / "kafka").glob("*")]:
        if path in keep or path == STACK_DIR / "kafka" or not path.exists():
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    MariaDBServer().socket_path.unlink(missing_ok=True)
    print(f"  reset {STACK_DIR} (kept {KAFKA_LIBS.relative_to(STACK_DIR)})")


def is_healthy(servers_only: bool = False) -> bool:
    """Whether every server (and, unless servers_only, the runtime) runs and answers; a cluster serves every slot."""
    servers_up = all(server.is_up() for server in (SERVERS if servers_only else ALL))
    return servers_up and (not settings.redis_cluster or _cluster_health() == "ok")


def status(servers_only: bool = False) -> bool:
    """Print pid, port and health of each server (each cluster node and the cluster); True when all are healthy."""
    ok = True
    print(f"  {'server':<8} {'pid':>8}  {'ports':<12} healthy")
    for server in SERVERS if servers_only else ALL:
        up = server.is_up()
        ok = ok and up
        ports = ",".join(str(p) for p in server.ports)
        print(f"  {server.name:<8} {server.running_pid() or '-':>8}  {ports:<12} {'yes' if up else 'no'}")
        if server is CLUSTER_NODES[-1]:
            health = _cluster_health()
            ok = ok and health == "ok"
            print(f"  {'cluster':<8} {'':>8}  {'':<12} {'yes' if health == 'ok' else 'no: ' + health}")
    for server in OTHER_REDIS_SERVERS:  # left running from a start in the other Redis mode
        if server.running_pid() is not None:
            ok = False
            print(f"  {server.name:<8} {server.running_pid():>8}  {'':<12} running, but GOODSDROP_REDIS_CLUSTER "
                  "says otherwise")
    if not servers_only and RUNTIME.is_up():  # the Kafka mappings: processed, retried, dead-lettered, lag
        from goodsdrop_local.status import print_mappings
        from goodsdrop_local.template import load

        print_mappings(load())
    return ok


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m goodsdrop_local.stack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack (idempotent) and wait until healthy")
    up.add_argument("--servers-only", action="store_true", help="stop after the four servers")
    commands.add_parser("down", help="stop everything")
    commands.add_parser("reset", help="down, then delete all state (keeps the Kafka jars)")
    st = commands.add_parser("status", help="exit 0 only when everything is healthy")
    st.add_argument("--servers-only", action="store_true", help="ignore the runtime")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            ensure_up(servers_only=args.servers_only)
        elif args.command == "down":
            stop_all()
        elif args.command == "reset":
            reset()
        elif args.command == "status":
            return 0 if status(servers_only=args.servers_only) else 1
    except StackError as error:
        print(f"stack {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
