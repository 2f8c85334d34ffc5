"""GET /products/{id}/stock: `{productId, stock, status}` from the look-aside stock cache (anyone)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import Stock
from goodsdrop.stock import read_stock

logger = Logger()
app = make_resolver()


@app.get("/products/<product_id>/stock")
def get(product_id: str) -> Response[Stock]:
    return respond(200, read_stock(parse_product_id(product_id)).to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
