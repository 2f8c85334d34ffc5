"""What `python -m provision` creates covers the template: every mapping's topics and failure destinations."""

from __future__ import annotations

from goodsdrop import topics
from goodsdrop.settings import settings
from goodsdrop_local.template import load
from provision import migrations


def test_the_topics_provisioned_are_every_topic_the_template_reads_or_dead_letters_to():
    app = load(environ={"GOODSDROP_TOPIC_PREFIX": settings.topic_prefix})
    provisioned = {topics.topic(name) for name in topics.ALL}
    named = {t for mapping in app.kafka for t in mapping.topics}
    named |= {mapping.on_failure_topic for mapping in app.kafka if mapping.on_failure_topic}
    assert app.kafka and named <= provisioned, named - provisioned


def test_the_migrations_are_found_beside_the_repository_root():
    found = migrations.discover()
    assert found and [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].name.startswith("0001_")
