"""POST /dashboard/products/{id}/stream-ticket: a short-lived ticket for the drop's live stream on the SSE
container (a browser's EventSource cannot send the Authorization header)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.drop_watch import issue_stream_ticket
from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import StreamTicket

logger = Logger()
app = make_resolver()


@app.post("/dashboard/products/<product_id>/stream-ticket")
def post(product_id: str) -> Response[StreamTicket]:
    caller = current_caller(app)
    return respond(201, issue_stream_ticket(caller, parse_product_id(product_id)).to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
