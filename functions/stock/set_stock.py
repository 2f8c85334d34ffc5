"""PUT /products/{id}/stock: the product's own seller sets its stock (write-through; emits StockChanged)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import StockChange, set_product_stock
from goodsdrop.http import make_resolver, require_seller, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import Stock

logger = Logger()
app = make_resolver()


@app.put("/products/<product_id>/stock")
def put(product_id: str, body: StockChange) -> Response[Stock]:
    caller = require_seller(app)
    return respond(200, set_product_stock(caller.member_id, parse_product_id(product_id), body.stock))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
