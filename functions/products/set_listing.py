"""PUT /products/{id}/listing: the product's own seller takes it off sale ({"listed": false}) or puts it back."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import Listing, set_listing
from goodsdrop.http import make_resolver, require_seller, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import Product

logger = Logger()
app = make_resolver()


@app.put("/products/<product_id>/listing")
def put(product_id: str, body: Listing) -> Response[Product]:
    caller = require_seller(app)
    return respond(200, set_listing(caller.member_id, parse_product_id(product_id), body.listed))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
