"""POST /orders: reserve every line atomically and start the saga (verified members; Idempotency-Key required)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, require_verified, respond, source_ip
from goodsdrop.orders import PlaceOrder, place_order
from goodsdrop.responses import OrderAccepted
from goodsdrop.telemetry import capture_handler

logger = Logger()
app = make_resolver()


@app.post("/orders")
def post(body: PlaceOrder) -> Response[OrderAccepted]:
    caller = require_verified(app)
    accepted = place_order(caller, body, app.current_event.headers.get("idempotency-key"), source_ip(app))
    return respond(202, accepted, {"Location": f"/orders/{accepted['orderId']}"})


@capture_handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
