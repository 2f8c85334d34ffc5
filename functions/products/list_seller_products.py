"""GET /sellers/me/products: the calling seller's own products, newest first, paged."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import list_seller_products
from goodsdrop.http import make_resolver, page_params, require_seller, respond
from goodsdrop.responses import ProductPage

logger = Logger()
app = make_resolver()


@app.get("/sellers/me/products")
def get() -> Response[ProductPage]:
    caller = require_seller(app)
    page, size = page_params(app)
    return respond(200, list_seller_products(caller.member_id, page, size))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
