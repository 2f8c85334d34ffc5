"""PATCH /cart/items/{productId} {quantity}: sets a line's quantity (0 removes it)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import CartLineQuantity, parse_cart_product_id, set_cart_quantity
from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.responses import Cart

logger = Logger()
app = make_resolver()


@app.patch("/cart/items/<product_id>")
def patch(product_id: str, body: CartLineQuantity) -> Response[Cart]:
    member_id = current_caller(app).member_id
    return respond(200, set_cart_quantity(member_id, parse_cart_product_id(product_id), body.quantity))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
