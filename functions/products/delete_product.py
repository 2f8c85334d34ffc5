"""DELETE /products/{id}: the product's own seller deletes it while nothing of it was ever ordered (else 409)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import delete_product
from goodsdrop.http import make_resolver, require_seller
from goodsdrop.products import parse_product_id

logger = Logger()
app = make_resolver()


@app.delete("/products/<product_id>")
def delete(product_id: str) -> Response[None]:
    caller = require_seller(app)
    delete_product(caller.member_id, parse_product_id(product_id))
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
