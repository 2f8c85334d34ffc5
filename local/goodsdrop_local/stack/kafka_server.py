"""Kafka for the local stack: one KRaft node (broker and controller), its jars from Maven Central."""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import uuid

from kafka import KafkaAdminClient

from goodsdrop.settings import settings
from goodsdrop_local.stack.server import HOST, LOG_DIR, ROOT, STACK_DIR, Server, port_open, run_logged, which

KAFKA_LIBS = STACK_DIR / "kafka" / "libs"
KAFKA_POM = ROOT / "infra" / "kafka" / "pom.xml"


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
            run_logged(
                [*self._java(), "kafka.tools.StorageTool", "format",
                 "-t", self.cluster_id.decode().rstrip("="), "-c", str(self.properties)],
                self.log_path,
                "kafka storage format",
            )  # fmt: skip

    def _java(self) -> list[str]:
        return [
            which("java"),
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j}",
            "-cp",
            f"{KAFKA_LIBS}/*",
        ]

    def command(self) -> list[str]:
        java = self._java()
        return [java[0], "-Xms256m", "-Xmx512m", *java[1:], "kafka.Kafka", str(self.properties)]

    def healthy(self) -> bool:
        if not port_open(settings.kafka_port):
            return False
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



def fetch_kafka_libs() -> None:
    """Copy the Kafka jars from Maven into .stack/kafka/libs unless the pom is unchanged."""
    digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
    stamp = KAFKA_LIBS / ".pom.sha256"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    fresh = KAFKA_LIBS.with_name("libs.new")
    shutil.rmtree(fresh, ignore_errors=True)
    run_logged(
        [which("mvn"), "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={fresh}"],
        LOG_DIR / "kafka.log",
        "fetch kafka jars",
    )  # fmt: skip
    (fresh / ".pom.sha256").write_text(digest + "\n")
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    fresh.rename(KAFKA_LIBS)

