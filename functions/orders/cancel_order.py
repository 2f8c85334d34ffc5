"""POST /orders/{id}/cancel: the buyer cancels an order before shipping, PENDING included (refund, stock back)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.orders import cancel_order, parse_order_id
from goodsdrop.responses import Order

logger = Logger()
app = make_resolver()


@app.post("/orders/<order_id>/cancel")
def post(order_id: str) -> Response[Order]:
    caller = current_caller(app)
    return respond(200, cancel_order(caller, parse_order_id(order_id)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
