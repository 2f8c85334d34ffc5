"""The Kafka topics GoodsDrop produces to and consumes from (goodsdrop.topics.ALL), created if missing.

The template's event-source mappings and their on-failure destinations name only these topics
(tests/unit/test_provision.py keeps it so), so creating `topics.ALL` covers every mapping here
and on AWS.
"""

from __future__ import annotations

from contextlib import suppress

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from goodsdrop import topics
from goodsdrop.settings import settings

PARTITIONS = 3


def ensure_topics(partitions: int = PARTITIONS, replication_factor: int = 1) -> list[str]:
    """Create every topic of `topics.ALL` (with the prefix) that the cluster lacks; returns those created now."""
    wanted = {topics.topic(name) for name in topics.ALL}
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="goodsdrop-provision")
    try:
        missing = sorted(wanted - set(admin.list_topics()))
        for name in missing:
            with suppress(TopicAlreadyExistsError):  # another `make up` (or deploy) raced us to it
                admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)])
        return missing
    finally:
        admin.close()
