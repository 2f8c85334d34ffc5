"""PATCH /products/{id}: the product's own seller changes name, description, price, salesStartAt, perMemberLimit."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import ProductChanges, update_product
from goodsdrop.http import make_resolver, require_seller, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import Product

logger = Logger()
app = make_resolver()


@app.patch("/products/<product_id>")
def patch(product_id: str, body: ProductChanges) -> Response[Product]:
    caller = require_seller(app)
    return respond(200, update_product(caller.member_id, parse_product_id(product_id), body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
