"""POST /orders/{id}/items/{productId}/cancel: the buyer cancels one line before it ships."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.orders import cancel_line, parse_order_id
from goodsdrop.products import parse_product_id
from goodsdrop.responses import Order

logger = Logger()
app = make_resolver()


@app.post("/orders/<order_id>/items/<product_id>/cancel")
def post(order_id: str, product_id: str) -> Response[Order]:
    caller = current_caller(app)
    return respond(200, cancel_line(caller, parse_order_id(order_id), parse_product_id(product_id)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
