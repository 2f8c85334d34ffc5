"""DELETE /cart/items/{productId}: removes one line from the cart."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import parse_cart_product_id, remove_from_cart
from goodsdrop.http import current_caller, make_resolver

logger = Logger()
app = make_resolver()


@app.delete("/cart/items/<product_id>")
def delete(product_id: str) -> Response[None]:
    remove_from_cart(current_caller(app).member_id, parse_cart_product_id(product_id))
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
