"""GET /products: search the catalogue (q, sellerId, minPrice, maxPrice, status, sort, page, size) (anyone)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import parse_search, search_products
from goodsdrop.http import make_resolver, respond
from goodsdrop.responses import ProductPage

logger = Logger()
app = make_resolver()


@app.get("/products")
def get() -> Response[ProductPage]:
    query = parse_search(app.current_event.query_string_parameters or {})
    return respond(200, search_products(query))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
