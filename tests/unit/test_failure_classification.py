"""The one failure classifier (goodsdrop.failures), record decoding (goodsdrop.events.decode_record) and the
consumer runner's decisions (goodsdrop.consumers), each kind of failure once. No servers: the runner's two
outlets (the dead-letter topic and the outbox) are replaced by recorders."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import kafka.errors
import pydantic
import pymysql
import pytest
import redis.exceptions

from goodsdrop import consumers, failures
from goodsdrop.errors import Conflict, NotFound, RateLimited, ServiceUnavailable, ValidationError
from goodsdrop.event_schemas import SCHEMAS, OrderRequested
from goodsdrop.events import Envelope, decode_record
from goodsdrop.payment_gateway import GatewayUnavailable
from tests.support.faults import SimulatedOutage

ORDER = "01KAAAAAAAAAAAAAAAAAAAAAA1"
REQUESTED = {"orderId": ORDER, "memberId": "7", "lines": [{"productId": "2", "quantity": 1, "price": 900}],
             "total": 900, "paymentToken": "tok_ok", "reservedAt": 1, "expiresAt": 2}


def record(value: bytes | None, offset: int = 5) -> dict:
    """One record of Lambda's Kafka event."""
    return {"topic": "goodsdrop.order-requested", "partition": 1, "offset": offset, "timestamp": 1,
            "timestampType": "CREATE_TIME", "key": base64.b64encode(ORDER.encode()).decode(),
            "value": None if value is None else base64.b64encode(value).decode(), "headers": []}


def envelope_bytes(**changes) -> bytes:
    doc = Envelope(type="OrderRequested", correlation_id=ORDER, payload=REQUESTED).model_dump() | changes
    return json.dumps(doc).encode()


def reason_of(value: bytes | None, accepts: tuple[str, ...] = ()) -> str:
    with pytest.raises(ValidationError) as caught:
        decode_record(record(value), accepts)
    assert failures.classify(caught.value).kind == failures.PERMANENT
    return caught.value.code


# ------------------------------------------------------------------------------ decoding: permanent kinds


@pytest.mark.parametrize("value", [None, b"\xff\xfe not utf-8", b"plain text, not JSON", b"{\"truncated\": "])
def test_undecodable_values(value):
    assert reason_of(value) == failures.UNDECODABLE


def test_a_value_that_is_not_base64_is_undecodable():
    bad = record(b"x") | {"value": "@@@ not base64 @@@"}
    with pytest.raises(ValidationError) as caught:
        decode_record(bad)
    assert caught.value.code == failures.UNDECODABLE


@pytest.mark.parametrize("value", [b"{\"hello\": \"world\"}", b"[1, 2, 3]", b"42",
                                   envelope_bytes(version="1"), envelope_bytes(payload=[1]),
                                   envelope_bytes(type=7)])
def test_json_that_is_not_an_envelope(value):
    assert reason_of(value) == failures.ENVELOPE_INVALID


def test_an_envelope_without_an_event_id_is_refused_rather_than_given_a_new_one():
    doc = json.loads(envelope_bytes())
    del doc["event_id"]
    assert reason_of(json.dumps(doc).encode()) == failures.ENVELOPE_INVALID


def test_unknown_type_unknown_version_and_a_type_for_another_consumer():
    assert reason_of(envelope_bytes(type="OrderTeleported")) == failures.UNKNOWN_EVENT_TYPE
    assert reason_of(envelope_bytes(version=2)) == failures.UNKNOWN_EVENT_VERSION
    assert reason_of(envelope_bytes(), accepts=("OrderPlaced",)) == failures.UNEXPECTED_EVENT_TYPE


@pytest.mark.parametrize("change", [
    {"orderId": "not-a-ulid"}, {"memberId": 7}, {"lines": []}, {"lines": [{"productId": "2", "quantity": 0,
                                                                          "price": 1}]},
    {"total": "900"}, {"total": -1}, {"paymentToken": ""}, {"reservedAt": None},
])
def test_a_payload_that_fails_its_schema(change):
    assert reason_of(envelope_bytes(payload=REQUESTED | change)) == failures.PAYLOAD_INVALID


def test_a_good_record_decodes_and_unknown_payload_fields_are_ignored():
    envelope = decode_record(record(envelope_bytes(payload=REQUESTED | {"coupon": "x"})), ("OrderRequested",))
    assert envelope.type == "OrderRequested" and envelope.payload["orderId"] == ORDER
    assert OrderRequested.model_validate(envelope.payload).total == 900


def test_every_event_the_product_publishes_has_a_schema():
    published = {"OrderRequested", "PaymentSucceeded", "PaymentFailed", "OrderPersistenceFailed",
                 "StockPersistenceFailed", "OrderPlaced", "OrderConfirmed", "OrderFailed", "OrderExpired",
                 "OrderCancelled", "OrderLineCancelled", "OrderLineReturned", "StockChanged"}
    assert published <= {event_type for event_type, _ in SCHEMAS}


# ------------------------------------------------------------------------------ the classifier


@pytest.mark.parametrize("error,reason", [
    (redis.exceptions.ConnectionError("refused"), "REDIS_UNAVAILABLE"),
    (redis.exceptions.TimeoutError("slow"), "REDIS_UNAVAILABLE"),
    (redis.exceptions.BusyLoadingError("LOADING"), "REDIS_UNAVAILABLE"),
    (redis.exceptions.ClusterDownError("CLUSTERDOWN"), "REDIS_UNAVAILABLE"),
    (redis.exceptions.ReadOnlyError("READONLY"), "REDIS_UNAVAILABLE"),
    (pymysql.err.OperationalError(2003, "Can't connect"), "MYSQL_UNAVAILABLE"),
    (pymysql.err.OperationalError(2013, "Lost connection"), "MYSQL_UNAVAILABLE"),
    (pymysql.err.InterfaceError(0, ""), "MYSQL_UNAVAILABLE"),
    (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), "MYSQL_LOCK_WAIT_TIMEOUT"),
    (pymysql.err.OperationalError(1213, "Deadlock found"), "MYSQL_DEADLOCK"),
    (kafka.errors.KafkaTimeoutError("no ack"), "KAFKA_UNAVAILABLE"),
    (kafka.errors.NoBrokersAvailable(), "KAFKA_UNAVAILABLE"),
    (GatewayUnavailable("gateway unavailable (attempt 1)"), "GATEWAY_UNAVAILABLE"),  # tok_error
    (ServiceUnavailable("stock is being recovered"), "SERVICE_UNAVAILABLE"),
    (RateLimited("slow down"), "RATE_LIMITED"),
    (SimulatedOutage("injected"), "SERVICE_UNAVAILABLE"),
    (TimeoutError("socket"), "SERVICE_UNAVAILABLE"),
])
def test_transient_faults_are_retried(error, reason):
    failure = failures.classify(error)
    assert (failure.kind, failure.reason) == (failures.TRANSIENT, reason)
    assert failure.transient and type(error).__name__ in failure.detail


def _pydantic_error() -> pydantic.ValidationError:
    try:
        OrderRequested.model_validate({})
    except pydantic.ValidationError as err:
        return err
    raise AssertionError("unreachable")


@pytest.mark.parametrize("error,reason", [
    (NotFound("order X", code=failures.UNKNOWN_ORDER), failures.UNKNOWN_ORDER),
    (NotFound("product 9", code=failures.UNKNOWN_PRODUCT), failures.UNKNOWN_PRODUCT),
    (NotFound("member 9", code=failures.UNKNOWN_MEMBER), failures.UNKNOWN_MEMBER),
    (ValidationError("bad", code=failures.PAYLOAD_INVALID), failures.PAYLOAD_INVALID),
    (Conflict("no", code="INVALID_STATE"), "INVALID_STATE"),
    (pymysql.err.IntegrityError(1062, "Duplicate entry"), failures.DATA_REJECTED),
    (pymysql.err.DataError(1264, "Out of range value"), failures.DATA_REJECTED),
    (_pydantic_error(), failures.PAYLOAD_INVALID),
    (json.JSONDecodeError("Expecting value", "x", 0), failures.UNDECODABLE),
    (KeyError("orderId"), failures.UNEXPECTED_ERROR),
    (pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"), failures.UNEXPECTED_ERROR),
    (redis.exceptions.ResponseError("WRONGTYPE"), failures.UNEXPECTED_ERROR),
])
def test_permanent_failures_are_dead_lettered(error, reason):
    failure = failures.classify(error)
    assert (failure.kind, failure.reason) == (failures.PERMANENT, reason)
    assert not failure.transient


# ------------------------------------------------------------------------------ the runner's decisions


@pytest.fixture
def outlets(monkeypatch):
    """The runner's dead letters and outbox confirmations, recorded instead of sent."""
    seen = SimpleNamespace(dead=[], confirmed=0, flushed=0)

    def write(raw: dict, failure: failures.Failure, consumer: str, step: str, wait: bool = True) -> SimpleNamespace:
        seen.dead.append((raw["offset"], failure.reason, consumer))
        return SimpleNamespace(get=lambda timeout=None: None)  # the broker took it

    monkeypatch.setattr(consumers.dead_letters, "write", write)
    monkeypatch.setattr(consumers, "kafka_producer", lambda: SimpleNamespace(flush=lambda timeout=None: None))

    def publish_committed(wait: bool = True, timeout: float = 5.0) -> int:
        seen.confirmed += wait
        return 0

    monkeypatch.setattr(consumers.outbox, "publish_committed", publish_committed)
    return seen


def lambda_event(values: list[bytes | None]) -> dict:
    return {"eventSource": "SelfManagedKafka", "bootstrapServers": "b:9092",
            "records": {"goodsdrop.order-requested-1": [record(v, offset=i) for i, v in enumerate(values)]}}


def run(values: list[bytes | None], apply) -> dict:
    step = consumers.Step("payments", ("OrderRequested",), apply)
    context = SimpleNamespace(function_name="ProcessPaymentFunction", aws_request_id="r", invoked_function_arn="a",
                              memory_limit_in_mb=128)
    return consumers.run_saga_step(lambda_event(values), context, step, consumers.Logger(service="test"))


def test_a_batch_of_nothing_but_poison_is_dead_lettered_and_the_invocation_succeeds(outlets):
    calls = []
    response = run([b"junk", b"{}", envelope_bytes(type="Nope")], calls.append)
    assert response == {"batchItemFailures": []}
    assert outlets.dead == [(0, failures.UNDECODABLE, "ProcessPaymentFunction"),
                            (1, failures.ENVELOPE_INVALID, "ProcessPaymentFunction"),
                            (2, failures.UNKNOWN_EVENT_TYPE, "ProcessPaymentFunction")]
    assert calls == [] and outlets.confirmed == 1


def test_a_batch_whose_every_record_fails_transiently_reports_them_instead_of_raising(outlets):
    def unavailable(event):
        raise pymysql.err.OperationalError(2003, "Can't connect to MySQL")

    response = run([envelope_bytes(), envelope_bytes()], unavailable)
    assert response == {"batchItemFailures": [{"itemIdentifier": {"partition": "goodsdrop.order-requested-1",
                                                                  "offset": 0}},
                                              {"itemIdentifier": {"partition": "goodsdrop.order-requested-1",
                                                                  "offset": 1}}]}
    assert outlets.dead == []


def test_poison_beside_good_and_transient_records(outlets):
    def step(event):
        if event.payload["total"] == 1:
            raise NotFound("no such order", code=failures.UNKNOWN_ORDER)
        if event.payload["total"] == 2:
            raise GatewayUnavailable("gateway unavailable (attempt 1)")
        return "charged"

    response = run([envelope_bytes(payload=REQUESTED | {"total": 1}), envelope_bytes(),
                    envelope_bytes(payload=REQUESTED | {"total": 2}), b"not json"], step)
    assert [f["itemIdentifier"]["offset"] for f in response["batchItemFailures"]] == [2]
    assert [(o, r) for o, r, _ in outlets.dead] == [(0, failures.UNKNOWN_ORDER), (3, failures.UNDECODABLE)]


def test_a_dead_letter_that_cannot_be_written_is_retried_not_dropped(outlets, monkeypatch):
    def broker_away(raw, failure, consumer, step, wait=True):
        raise kafka.errors.KafkaTimeoutError("no metadata")

    monkeypatch.setattr(consumers.dead_letters, "write", broker_away)
    response = run([b"junk"], lambda event: None)
    assert [f["itemIdentifier"]["offset"] for f in response["batchItemFailures"]] == [0]


def test_a_dead_letter_the_broker_refuses_after_sending_is_retried_not_dropped(outlets, monkeypatch):
    def refused(timeout=None):
        raise kafka.errors.KafkaTimeoutError("no ack")

    def write(raw, failure, consumer, step, wait=True):
        return SimpleNamespace(get=refused)

    monkeypatch.setattr(consumers.dead_letters, "write", write)
    response = run([envelope_bytes(), b"junk"], lambda event: "charged")
    assert [f["itemIdentifier"]["offset"] for f in response["batchItemFailures"]] == [1]
