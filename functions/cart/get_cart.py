"""GET /cart: the caller's cart with current prices, stock status and total (members)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import view_cart
from goodsdrop.http import current_caller, json_response, make_resolver

logger = Logger()
app = make_resolver()


@app.get("/cart")
def get():
    caller = current_caller(app)
    return json_response(200, view_cart(caller.member_id).to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
