"""POST /products/{id}/queue: join a product's waiting room; the ticket and where it stands (verified members)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.admission import join_queue
from goodsdrop.http import make_resolver, require_verified, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import QueueStanding

logger = Logger()
app = make_resolver()


@app.post("/products/<product_id>/queue")
def post(product_id: str) -> Response[QueueStanding]:
    caller = require_verified(app)
    standing = join_queue(caller.member_id, parse_product_id(product_id))
    return respond(200, standing.to_json(), {"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
