"""GET /products/{id}: product detail with live stock and sale status (anyone)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import product_detail
from goodsdrop.http import make_resolver, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import Product

logger = Logger()
app = make_resolver()


@app.get("/products/<product_id>")
def get(product_id: str) -> Response[Product]:
    return respond(200, product_detail(parse_product_id(product_id)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
