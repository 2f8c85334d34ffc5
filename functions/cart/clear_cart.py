"""DELETE /cart: empties the cart."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import clear_cart
from goodsdrop.http import current_caller, make_resolver

logger = Logger()
app = make_resolver()


@app.delete("/cart")
def delete() -> Response[None]:
    clear_cart(current_caller(app).member_id)
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
