"""GET /orders/{id}: one of the caller's orders, PENDING ones included (anyone else's: 404)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.orders import get_order, parse_order_id
from goodsdrop.responses import Order

logger = Logger()
app = make_resolver()


@app.get("/orders/<order_id>")
def get(order_id: str) -> Response[Order]:
    caller = current_caller(app)
    return respond(200, get_order(caller, parse_order_id(order_id)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
