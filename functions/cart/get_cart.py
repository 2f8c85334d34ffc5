"""GET /cart: the member's cart with current prices, line totals and stock status."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import view_cart
from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.responses import Cart

logger = Logger()
app = make_resolver()


@app.get("/cart")
def get() -> Response[Cart]:
    return respond(200, view_cart(current_caller(app).member_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
