"""GET /dashboard/products: the drops the caller may watch (a seller's own products, every product for an operator)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.drop_watch import watched_products
from goodsdrop.http import current_caller, make_resolver, page_params, respond
from goodsdrop.responses import WatchedProductPage

logger = Logger()
app = make_resolver()


@app.get("/dashboard/products")
def get() -> Response[WatchedProductPage]:
    caller = current_caller(app)
    page, size = page_params(app)
    return respond(200, watched_products(caller, page, size))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
