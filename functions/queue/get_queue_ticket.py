"""GET /products/{id}/queue/{ticket}: where the caller's own ticket stands; an admitted one gets a pass."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.admission import parse_ticket, queue_standing
from goodsdrop.http import make_resolver, require_verified, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import QueueStanding

logger = Logger()
app = make_resolver()


@app.get("/products/<product_id>/queue/<ticket>")
def get(product_id: str, ticket: str) -> Response[QueueStanding]:
    caller = require_verified(app)
    standing = queue_standing(caller.member_id, parse_product_id(product_id), parse_ticket(ticket))
    return respond(200, standing.to_json(), {"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
