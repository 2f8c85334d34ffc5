"""`python -m provision [schema] [topics]`: apply pending migrations and create missing topics.

Reads the servers from the environment like every part of GoodsDrop (goodsdrop.settings:
GOODSDROP_MYSQL_HOST / _PORT / _USER / _PASSWORD / _DATABASE, GOODSDROP_KAFKA_BOOTSTRAP,
GOODSDROP_TOPIC_PREFIX). Both steps are idempotent.
"""

from __future__ import annotations

import argparse
import sys

from provision.kafka_topics import PARTITIONS, ensure_topics
from provision.migrations import ensure_schema

STEPS = ("schema", "topics")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen steps (default: both); returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m provision", description=__doc__.split("\n")[0])
    parser.add_argument("steps", nargs="*", metavar="schema|topics", help="what to provision (default: both)")
    parser.add_argument("--partitions", type=int, default=PARTITIONS, help="partitions of a new topic")
    parser.add_argument("--replication-factor", type=int, default=1,
                        help="replicas of a new topic (1 for one broker; e.g. 3 for a three-broker MSK cluster)")
    args = parser.parse_args(argv)
    steps = args.steps or list(STEPS)
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    if "schema" in steps:
        print(f"schema: migrations applied {ensure_schema() or 'none'}")
    if "topics" in steps:
        print(f"topics: created {ensure_topics(args.partitions, args.replication_factor) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
