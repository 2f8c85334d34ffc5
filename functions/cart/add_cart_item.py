"""POST /cart/items {productId, quantity}: adds to what the cart holds (sliding 7-day TTL)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.cart import NewCartLine, add_to_cart
from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.responses import Cart

logger = Logger()
app = make_resolver()


@app.post("/cart/items")
def post(body: NewCartLine) -> Response[Cart]:
    return respond(200, add_to_cart(current_caller(app).member_id, body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
