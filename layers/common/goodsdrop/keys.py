"""Every Redis key name GoodsDrop uses, in one place.

Keys that one Lua script touches together share a hash tag (`{p<id>}`, `{m<id>}`), so every
script stays within one slot and the product can run on Redis Cluster unchanged.
"""

from __future__ import annotations

import re

PREFIX = "gd"
# A source network as goodsdrop.fields.network_of writes it (IPv4, or an IPv6 /64): nothing else,
# so a client's text never becomes part of a key (a `{...}` in it would even pick the cluster slot).
_NETWORK = re.compile(r"^[0-9a-f.:]{2,39}(?:/64)?$")


def _network(source_ip: str) -> str:
    if not _NETWORK.match(source_ip):
        raise ValueError(f"not a normalised source network: {source_ip[:60]!r}")
    return source_ip


def stock(product_id: int | str, shard: int = 0) -> str:
    """Hash of one stock shard of a product: `available`, `reserved`, `version` (shard 0 by default)."""
    return f"{PREFIX}:{{{stock_tag(product_id, shard)}}}:stock"


def stock_loading(product_id: int | str) -> str:
    """Short-lived lock held by the one loader that fills a missing stock key (stampede guard)."""
    return f"{PREFIX}:{{p{product_id}}}:stock:loading"


def product_detail(product_id: int | str) -> str:
    """Cached product detail document (JSON), invalidated on edit and on stock change."""
    return f"{PREFIX}:{{p{product_id}}}:detail"


def revoked_token(token_id: str) -> str:
    """Deny-list entry of a revoked access token; expires when the token would have."""
    return f"{PREFIX}:revoked:{token_id}"


def revoked_member_before(member_id: int | str) -> str:
    """Epoch second before which every access token of a member is revoked (password change)."""
    return f"{PREFIX}:{{m{member_id}}}:revoked-before"


def deny_list_ready() -> str:
    """Set once the deny-list is complete; its absence means Redis lost it (MySQL decides meanwhile)."""
    return f"{PREFIX}:deny-list:ready"


def deny_list_rebuild() -> str:
    """Held by the one process that rebuilds the deny-list from MySQL."""
    return f"{PREFIX}:deny-list:rebuild"


def cart(member_id: int | str) -> str:
    """A member's cart: hash of productId → quantity (sliding 7-day TTL)."""
    return f"{PREFIX}:{{m{member_id}}}:cart"


def member_email_verified(member_id: int | str) -> str:
    """Set when the member verifies their email, for as long as older access tokens (saying "not yet") live."""
    return f"{PREFIX}:{{m{member_id}}}:email-verified"


def cart_checkout(member_id: int | str) -> str:
    """The cart's checkout marker while an order of it is pending: hash order, digest, lines (snapshot)."""
    return f"{PREFIX}:{{m{member_id}}}:cart:checkout"


def revoked_session(member_id: int | str, session_id: str) -> str:
    """Deny-list entry of a revoked login session: every access token it issued is refused."""
    return f"{PREFIX}:{{m{member_id}}}:revoked-session:{session_id}"


def login_attempts_by_pair(pair_digest: str) -> str:
    """Login attempts for one email from one source network (SHA-256 of both: no address in key names)."""
    return f"{PREFIX}:login-attempts:pair:{pair_digest}"


def login_attempts_by_account(email_digest: str) -> str:
    """Login attempts for one email from networks it never signed in from (the account's throttle)."""
    return f"{PREFIX}:login-attempts:account:{email_digest}"


def login_attempts_by_ip(source_ip: str) -> str:
    """Login attempts from one source network, whatever the email (credential stuffing)."""
    return f"{PREFIX}:login-attempts:ip:{_network(source_ip)}"


def login_known_networks(email_digest: str) -> str:
    """Sorted set network → ms of the last successful login of one email from it (its owner's places)."""
    return f"{PREFIX}:login-known:{email_digest}"


def sign_ups_by_ip(source_ip: str) -> str:
    """Sign-ups from one source network in the current window."""
    return f"{PREFIX}:sign-ups:ip:{_network(source_ip)}"


def verification_resends(member_id: int | str) -> str:
    """Verification mails re-sent to a member in the current window."""
    return f"{PREFIX}:{{m{member_id}}}:verification-resends"

# ---- orders and payments (saga)
#
# A product's live stock may be split over S shards (`products.stock_shards`, 1..16), each its own
# hash slot: shard 0 is tagged `{p<id>}` (the keys a one-shard product always had), shard k >= 1
# `{p<id>.k}`. Every per-shard key below takes the shard; a script touches one shard only.


def stock_tag(product_id: int | str, shard: int = 0) -> str:
    """The hash tag of one stock shard of a product: `p<id>` for shard 0, `p<id>.<k>` for shard k."""
    return f"p{product_id}" if shard == 0 else f"p{product_id}.{shard}"


def member_held(member_id: int | str) -> str:
    """Hash productId → units a member holds of it (reserved + sold, not given back): perMemberLimit.

    It lives with the member, not with the product's stock shards, so the limit is checked and
    counted in one atomic step on the member's slot whatever shard the units come from.
    """
    return f"{PREFIX}:{{m{member_id}}}:held"


def member_held_returned(member_id: int | str, order_id: str) -> str:
    """Hash productId → "1" for each line of an order whose units went back to the member's `held`.

    Guards the give-back (release, expiry, compensation, restock) so it happens exactly once.
    """
    return f"{PREFIX}:{{m{member_id}}}:held-returned:{order_id}"


def member_held_rebuilt(member_id: int | str) -> str:
    """The recovery token under which a member's `held` counts were rebuilt after Redis lost its data."""
    return f"{PREFIX}:{{m{member_id}}}:held-rebuilt"


def stock_holds(product_id: int | str, shard: int = 0) -> str:
    """Hash orderId → "memberId:units" of a shard's open reservations (their sum is its `reserved`)."""
    return f"{PREFIX}:{{{stock_tag(product_id, shard)}}}:holds"


def stock_settled(product_id: int | str, order_id: str, shard: int = 0) -> str:
    """How an order's hold on a shard ended: "C:<units>" sold or "X:<units>" released (guards repeats)."""
    return f"{PREFIX}:{{{stock_tag(product_id, shard)}}}:settled:{order_id}"


def stock_restocked(product_id: int | str, order_id: str, shard: int = 0) -> str:
    """Marks a cancelled/returned order line whose units went back to this shard's live stock."""
    return f"{PREFIX}:{{{stock_tag(product_id, shard)}}}:restocked:{order_id}"


def stock_closed(product_id: int | str, shard: int = 0) -> str:
    """Present while the product is off sale (unlisted or deleted): this shard takes no new reservation."""
    return f"{PREFIX}:{{{stock_tag(product_id, shard)}}}:closed"


def stock_rebuild(product_id: int | str, shard: int = 0) -> str:
    """The token of the rebuild under way for a shard: its absence means Redis lost the shard meanwhile,
    or a saga step undid a settle the rebuild may have read (goodsdrop.reservations.unsettle)."""
    return f"{PREFIX}:{{{stock_tag(product_id, shard)}}}:stock:rebuild"


def stock_lock(product_id: int | str) -> str:
    """The distributed lock of the `redis_lock` stock strategy (benchmark comparison only)."""
    return f"{PREFIX}:{{p{product_id}}}:lock"


def stock_recovery_token() -> str:
    """The token of the recovery under way (its members' `held` rebuilds are done once per token)."""
    return f"{PREFIX}:stock-recovery-token"


def stock_epoch() -> str:
    """Set once stock may be rebuilt from MySQL; its absence means Redis lost its data."""
    return f"{PREFIX}:stock-epoch"


def stock_recovery_lock() -> str:
    """Held by the one process that recovers after Redis lost its data."""
    return f"{PREFIX}:stock-recovery"


def order_record(member_id: int | str, order_id: str) -> str:
    """Hash of an order while the saga runs (PENDING orders live here before MySQL has them)."""
    return f"{PREFIX}:{{m{member_id}}}:order:{order_id}"


def member_pending_orders(member_id: int | str) -> str:
    """Sorted set orderId → reserved-at ms of a member's orders MySQL does not have yet."""
    return f"{PREFIX}:{{m{member_id}}}:orders:pending"


def order_idempotency(member_id: int | str, key_digest: str) -> str:
    """Hash of one POST /orders Idempotency-Key of a member: fingerprint, state, outcome, order."""
    return f"{PREFIX}:{{m{member_id}}}:idem:{key_digest}"


def reservation_expiry() -> str:
    """Sorted set "memberId:orderId" → expiry ms of every open reservation (the expiry job's index)."""
    return f"{PREFIX}:reservations:expiry"


def mock_gateway(order_id: str) -> str:
    """The mock payment gateway's record of one order's charge and refunds."""
    return f"{PREFIX}:mockpay:{order_id}"


def order_idempotency_resume(member_id: int | str, key_digest: str) -> str:
    """Claimed by the one retry that finishes an order whose first attempt died before publishing."""
    return f"{order_idempotency(member_id, key_digest)}:resume"


# ---- admission control (token buckets and waiting rooms on POST /orders)
def order_bucket_by_member(member_id: int | str) -> str:
    """A member's token bucket for POST /orders (hash: tokens, ms); gone once it would be full."""
    return f"{PREFIX}:{{m{member_id}}}:order-bucket"


def order_bucket_by_ip(source_ip: str) -> str:
    """A source IP's token bucket for POST /orders (its own slot: IPs have no hash tag)."""
    return f"{PREFIX}:order-bucket:ip:{_network(source_ip)}"


def queue_arrivals(product_id: int | str) -> str:
    """Order attempts on a product in the current second (hash: second, count): the demand."""
    return f"{PREFIX}:{{p{product_id}}}:queue:arrivals"


def queue_room(product_id: int | str) -> str:
    """A product's open waiting room (hash: opened ms, base ticket); its TTL is the room's life."""
    return f"{PREFIX}:{{p{product_id}}}:queue:room"


def queue_sequence(product_id: int | str) -> str:
    """The last ticket issued for a product's waiting room (INCR: arrival order)."""
    return f"{PREFIX}:{{p{product_id}}}:queue:sequence"


def queue_tickets(product_id: int | str) -> str:
    """Hash memberId → ticket of a product's waiting room (one ticket per member)."""
    return f"{PREFIX}:{{p{product_id}}}:queue:tickets"


def queue_pass(product_id: int | str, member_id: int | str) -> str:
    """A member's admission pass for a product (TTL): POST /orders lets them through the room."""
    return f"{PREFIX}:{{p{product_id}}}:queue:pass:{member_id}"


def drop_watch(product_id: int | str, minute: int) -> str:
    """One minute of a product's drop figures (hash `<epoch second>:<field>` → value; goodsdrop.drop_watch)."""
    return f"{PREFIX}:{{p{product_id}}}:watch:{minute}"


def drop_watch_totals(product_id: int | str) -> str:
    """A product's drop figures since its first order attempt (hash: answer → count, soldOutMs)."""
    return f"{PREFIX}:{{p{product_id}}}:watch:totals"


def watch_ticket(ticket: str) -> str:
    """A dashboard stream ticket (the product and the watcher; TTL): the SSE container checks it."""
    return f"{PREFIX}:watch-ticket:{ticket}"
