"""GET /orders/{id}: one of the caller's orders, PENDING ones included (anyone else's: 404)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, json_response, make_resolver
from goodsdrop.orders import get_order, parse_order_id

logger = Logger()
app = make_resolver()


@app.get("/orders/<order_id>")
def get(order_id: str):
    caller = current_caller(app)
    return json_response(200, get_order(caller, parse_order_id(order_id)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
