"""GET /sellers/me/products: the calling seller's own products, newest first, paged."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import list_seller_products
from goodsdrop.http import json_response, make_resolver, page_params, require_seller

logger = Logger()
app = make_resolver()


@app.get("/sellers/me/products")
def get():
    caller = require_seller(app)
    page, size = page_params(app)
    return json_response(200, list_seller_products(caller.member_id, page, size))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
