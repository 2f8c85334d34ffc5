"""GET /products/{id}: product detail with live stock and sale status (anyone)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import json_response, make_resolver
from goodsdrop.products import get_product, parse_product_id
from goodsdrop.stock import read_stock

logger = Logger()
app = make_resolver()


@app.get("/products/<product_id>")
def get(product_id: str):
    pid = parse_product_id(product_id)
    product, level = get_product(pid), read_stock(pid)
    return json_response(200, product.to_json() | {"stock": level.stock, "status": level.status})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
