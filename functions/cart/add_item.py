"""POST /cart/items: add `{productId, quantity}` to what the caller's cart holds (members)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import AddCartItem, add_to_cart
from goodsdrop.http import current_caller, json_response, make_resolver

logger = Logger()
app = make_resolver()


@app.post("/cart/items")
def post(body: AddCartItem):
    caller = current_caller(app)
    return json_response(200, add_to_cart(caller.member_id, body.productId, body.quantity).to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
