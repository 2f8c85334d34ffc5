"""Dead-letter redrive for operators: list, show and replay what the consumers and mappings gave up on.

    python -m goodsdrop_local.dlq list                      # grouped by reason and consumer
    python -m goodsdrop_local.dlq list --records --reason UNKNOWN_ORDER
    python -m goodsdrop_local.dlq show 1:42                 # one dead letter in full (<partition>:<offset>)
    python -m goodsdrop_local.dlq replay 1:42 2:7           # back to their source topics
    python -m goodsdrop_local.dlq replay --reason INJECTED_REJECTION --consumer ConfirmOrderFunction
    make dlq ARGS="list --since 30"

It reads both kinds of dead letter (goodsdrop.dead_letters): a consumer's own `RecordDeadLettered`
envelope and Lambda's on-failure record of a `kafka://` destination. `replay` publishes each chosen
record exactly as it was (key, value, headers, plus `goodsdrop-replayed-from`) to its source topic
and partition, then writes a `DeadLetterReplayed` marker to the dead-letter topic, so a second
`replay` of the same set skips it (`--again` replays anyway). Replays are idempotent downstream too:
the record keeps its event id, and a consumer that applied it before drops it as a repeat.

Any cluster: `--bootstrap host:9092,...` (default: settings, `GOODSDROP_KAFKA_BOOTSTRAP`), `--topic`
(default: the prefix's dead-letters topic) and `--kafka-config KEY=VALUE` for kafka-python client
options (e.g. `security_protocol=SASL_SSL sasl_mechanism=SCRAM-SHA-512 sasl_plain_username=...`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from goodsdrop import dead_letters, topics
from goodsdrop.events import Envelope
from goodsdrop.settings import settings

REPLAYED_FROM = "goodsdrop-replayed-from"


def _when(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _client_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        options[name] = int(value) if value.isdigit() else value
    return options


class DeadLetterTopic:
    """The dead-letter topic of one cluster: its dead letters and the replays done so far."""

    def __init__(self, bootstrap: str, topic: str, options: dict[str, Any] | None = None) -> None:
        self.bootstrap, self.topic, self.options = bootstrap.split(","), topic, options or {}

    def read(self, since_ms: int | None = None) -> tuple[list[dead_letters.DeadLetter], dict[str, list[str]]]:
        """Every dead letter (since `since_ms`), and for each replayed one where its replays went."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                 client_id="goodsdrop-dlq", **self.options)
        letters: list[dead_letters.DeadLetter] = []
        replays: dict[str, list[str]] = defaultdict(list)
        try:
            parts = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
            if not parts:
                return [], {}
            consumer.assign(parts)
            ends = consumer.end_offsets(parts)
            starts = consumer.offsets_for_times(dict.fromkeys(parts, since_ms)) if since_ms else {}
            consumer.seek_to_beginning(*parts)
            for tp in parts:
                found = starts.get(tp)
                if since_ms and found is not None:
                    consumer.seek(tp, found.offset)
                elif since_ms:
                    consumer.seek(tp, ends[tp])
            deadline = time.monotonic() + 60
            while any(consumer.position(tp) < ends[tp] for tp in parts) and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=500).values():
                    for message in batch:
                        if message.offset >= ends[TopicPartition(message.topic, message.partition)]:
                            continue
                        read = dead_letters.read(message)
                        if isinstance(read, Envelope):
                            replays[str(read.payload.get("deadLetter"))].append(str(read.payload.get("replayedTo")))
                        elif read is not None:
                            letters.append(read)
        finally:
            consumer.close()
        letters.sort(key=lambda letter: (letter.timestamp, letter.partition, letter.offset))
        return letters, dict(replays)

    def replay(self, chosen: list[dead_letters.DeadLetter]) -> list[tuple[dead_letters.DeadLetter, str]]:
        """Publish each to its source topic and partition, then mark it replayed; returns (letter, where it went)."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", retries=5, **self.options)
        done = []
        try:
            for letter in chosen:
                headers = [(n, v) for n, v in letter.headers if n != REPLAYED_FROM]
                headers.append((REPLAYED_FROM, f"{self.topic}:{letter.id}".encode()))
                sent = producer.send(letter.source_topic, key=letter.key, value=letter.value, headers=headers,
                                     partition=letter.source_partition if letter.source_partition >= 0 else None)
                meta = sent.get(timeout=10)
                target = f"{meta.topic}:{meta.partition}:{meta.offset}"
                marker = Envelope(type=dead_letters.DEAD_LETTER_REPLAYED, correlation_id=letter.id,
                                  payload={"deadLetter": letter.id, "replayedTo": target})
                producer.send(self.topic, key=letter.key, value=marker.to_bytes()).get(timeout=10)
                done.append((letter, target))
        finally:
            producer.close()
        return done


def _matches(letter: dead_letters.DeadLetter, args: argparse.Namespace) -> bool:
    return ((not args.reason or letter.reason in args.reason)
            and (not args.consumer or letter.consumer in args.consumer)
            and (not args.source_topic or letter.source_topic in args.source_topic
                 or letter.source_topic.removeprefix(settings.topic_prefix) in args.source_topic)
            and (not args.key or (letter.key or b"").decode(errors="replace") in args.key))


def _summary(letter: dead_letters.DeadLetter, replays: dict[str, list[str]]) -> dict[str, Any]:
    return {"id": letter.id, "at": _when(letter.timestamp), "kind": letter.kind, "reason": letter.reason,
            "consumer": letter.consumer, "source": letter.source,
            "key": (letter.key or b"").decode(errors="replace"), "detail": letter.detail,
            "replayedTo": replays.get(letter.id, [])}


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def command_list(dlq: DeadLetterTopic, args: argparse.Namespace) -> int:
    since = int((time.time() - args.since * 60) * 1000) if args.since else None
    letters, replays = dlq.read(since)
    chosen = [letter for letter in letters if _matches(letter, args)
              and (args.all or letter.id not in replays)]
    if args.json:
        print(json.dumps([_summary(letter, replays) for letter in chosen], indent=2))
        return 0
    if not chosen:
        print(f"no dead letters in {dlq.topic}" + ("" if args.all else " waiting for a replay (--all shows every one)"))
        return 0
    if args.records:
        print(_table([_summary(letter, replays) for letter in chosen], ["id", "at", "reason", "consumer", "source",
                                                                       "key"]))
        return 0
    groups: dict[tuple[str, str], list[dead_letters.DeadLetter]] = defaultdict(list)
    for letter in chosen:
        groups[(letter.reason, letter.consumer)].append(letter)
    rows = [{"reason": reason, "consumer": consumer, "count": len(items),
             "source topics": ", ".join(sorted({i.source_topic for i in items})),
             "first": _when(items[0].timestamp), "last": _when(items[-1].timestamp),
             "replayed": sum(i.id in replays for i in items)}
            for (reason, consumer), items in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))]
    print(_table(rows, ["reason", "consumer", "count", "source topics", "first", "last", "replayed"]))
    print(f"\n{len(chosen)} dead letter(s) in {len(rows)} group(s); `list --records` names each, `show ID` shows one")
    return 0


def command_show(dlq: DeadLetterTopic, args: argparse.Namespace) -> int:
    letters, replays = dlq.read()
    found = {letter.id: letter for letter in letters}
    status = 0
    for wanted in args.ids:
        letter = found.get(wanted)
        if letter is None:
            print(f"{wanted}: no such dead letter in {dlq.topic}", file=sys.stderr)
            status = 1
            continue
        value: Any = (letter.value or b"").decode(errors="replace")
        with suppress(ValueError):  # JSON is shown as JSON, anything else as text
            value = json.loads(value)
        doc = _summary(letter, replays) | {
            "sourceTimestamp": _when(letter.source_timestamp),
            "headers": {name: raw.decode(errors="replace") for name, raw in letter.headers},
            "value": value}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    return status


def command_replay(dlq: DeadLetterTopic, args: argparse.Namespace) -> int:
    if not (args.ids or args.reason or args.consumer or args.source_topic or args.key):
        print("replay what? name dead letters (ID ...) or filter (--reason, --consumer, --source-topic, --key)",
              file=sys.stderr)
        return 2
    letters, replays = dlq.read()
    chosen = [letter for letter in letters if (not args.ids or letter.id in args.ids) and _matches(letter, args)]
    missing = sorted(set(args.ids) - {letter.id for letter in chosen}) if args.ids else []
    for wanted in missing:
        print(f"{wanted}: no such dead letter (or it does not match the filters)", file=sys.stderr)
    skipped = [letter for letter in chosen if letter.id in replays and not args.again]
    unreadable = [letter for letter in chosen if not letter.source_topic]
    todo = [letter for letter in chosen if letter not in skipped and letter not in unreadable]
    for letter in skipped:
        print(f"{letter.id}: replayed before (to {', '.join(replays[letter.id])}); --again replays it anyway")
    for letter in unreadable:
        print(f"{letter.id}: unreadable, it names no source topic: not replayed", file=sys.stderr)
    if args.dry_run:
        for letter in todo:
            print(f"{letter.id}: would go to {letter.source_topic}:{letter.source_partition}")
        return 0
    for letter, target in dlq.replay(todo):
        print(f"{letter.id}: {letter.reason} ({letter.consumer}) replayed to {target}")
    print(f"{len(todo)} replayed, {len(skipped)} replayed before, {len(unreadable) + len(missing)} not found or "
          "unreadable")
    return 1 if missing or unreadable else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goodsdrop_local.dlq", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap, help="brokers (default: %(default)s)")
    parser.add_argument("--topic", default=topics.topic(topics.DEAD_LETTERS), help="default: %(default)s")
    parser.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                        help="a kafka-python client option, e.g. security_protocol=SASL_SSL (repeat)")
    commands = parser.add_subparsers(dest="command", required=True)

    def filters(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--reason", action="append", help="only this reason (repeat)")
        sub.add_argument("--consumer", action="append", help="only this consumer / function (repeat)")
        sub.add_argument("--source-topic", action="append", help="only from this topic, with or without prefix")
        sub.add_argument("--key", action="append", help="only records with this key, e.g. an order id (repeat)")

    listing = commands.add_parser("list", help="dead letters grouped by reason and consumer")
    filters(listing)
    listing.add_argument("--since", type=float, help="only the last N minutes")
    listing.add_argument("--all", action="store_true", help="include dead letters already replayed")
    listing.add_argument("--records", action="store_true", help="one line per dead letter instead of groups")
    listing.add_argument("--json", action="store_true")
    show = commands.add_parser("show", help="dead letters in full")
    show.add_argument("ids", nargs="+", metavar="ID", help="<partition>:<offset> in the dead-letter topic")
    replay = commands.add_parser("replay", help="publish dead letters to their source topics again")
    replay.add_argument("ids", nargs="*", metavar="ID")
    filters(replay)
    replay.add_argument("--again", action="store_true", help="also those replayed before")
    replay.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    dlq = DeadLetterTopic(args.bootstrap, args.topic, _client_options(args.kafka_config))
    return {"list": command_list, "show": command_show, "replay": command_replay}[args.command](dlq, args)


if __name__ == "__main__":
    sys.exit(main())
