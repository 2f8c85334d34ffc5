"""GET /dashboard/products/{id}/report?from=&to=: a drop's figures per second over the range (epoch ms)
and over the whole drop: answers, sell-out time, buyers served, payments declined, refunds, latency."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.drop_watch import drop_report
from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.products import parse_product_id
from goodsdrop.responses import DropReport

logger = Logger()
app = make_resolver()


@app.get("/dashboard/products/<product_id>/report")
def get(product_id: str) -> Response[DropReport]:
    caller = current_caller(app)
    query = app.current_event.get_query_string_value
    return respond(200, drop_report(caller, parse_product_id(product_id), query("from"), query("to")))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
