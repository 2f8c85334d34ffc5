"""GET /orders?page&size&status: the caller's orders, newest first."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, page_params, respond
from goodsdrop.orders import list_orders
from goodsdrop.responses import OrderPage

logger = Logger()
app = make_resolver()


@app.get("/orders")
def get() -> Response[OrderPage]:
    caller = current_caller(app)
    page, size = page_params(app)
    status = app.current_event.get_query_string_value("status") or None
    return respond(200, list_orders(caller, page, size, status))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
