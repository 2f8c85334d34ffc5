"""PATCH /cart/items/{productId}: set a line's `{quantity}`; 0 removes it (members)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import SetCartItem, parse_cart_product_id, set_cart_quantity
from goodsdrop.http import current_caller, json_response, make_resolver

logger = Logger()
app = make_resolver()


@app.patch("/cart/items/<product_id>")
def patch(product_id: str, body: SetCartItem):
    caller = current_caller(app)
    view = set_cart_quantity(caller.member_id, parse_cart_product_id(product_id), body.quantity)
    return json_response(200, view.to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
