"""Identifiers: ULIDs (26 characters, Crockford base32, sortable by creation time) and event ids.

Order and payment ids are ULIDs, so "newest first" is also "largest id first". Saga events get
deterministic ids (`event_id_for`): a step that publishes its outcome again after a crash
publishes the very same event, and every consumer's processed-event record drops the repeat.
"""

from __future__ import annotations

import os
import uuid

from goodsdrop.clock import now_ms

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_EVENT_NAMESPACE = uuid.UUID("0f7e5a52-3c1b-4d5e-9a0b-6f7d1c2e3b4a")


def new_ulid(at_ms: int | None = None) -> str:
    """A new ULID: 48 bits of epoch milliseconds, then 80 random bits."""
    millis = now_ms() if at_ms is None else at_ms
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_ulid(text: str) -> bool:
    """Whether `text` looks like a ULID (used to reject malformed ids before any lookup)."""
    return len(text) == 26 and all(c in _ALPHABET for c in text)


def event_id_for(*parts: object) -> str:
    """The deterministic event id of one saga outcome, e.g. `event_id_for(order_id, "OrderPlaced")`."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, ":".join(str(p) for p in parts)))
