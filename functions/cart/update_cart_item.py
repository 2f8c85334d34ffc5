"""PATCH /cart/items/{productId} {quantity}: sets a line's quantity (0 removes it)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import CartLineQuantity, set_cart_quantity
from goodsdrop.http import current_caller, json_response, make_resolver
from goodsdrop.products import parse_product_id

logger = Logger()
app = make_resolver()


@app.patch("/cart/items/<product_id>")
def patch(product_id: str, body: CartLineQuantity):
    member_id = current_caller(app).member_id
    return json_response(200, set_cart_quantity(member_id, parse_product_id(product_id), body.quantity))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
