"""GET /seller/orders?status&productId&from&to&page&size: the seller's own order lines, newest first."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, require_seller, respond
from goodsdrop.order_desk import list_seller_lines, parse_desk_query
from goodsdrop.responses import SellerOrderPage

logger = Logger()
app = make_resolver()


@app.get("/seller/orders")
def get() -> Response[SellerOrderPage]:
    seller = require_seller(app)
    query = parse_desk_query(app.current_event.query_string_parameters or {})
    return respond(200, list_seller_lines(seller, query))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
