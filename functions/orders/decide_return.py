"""PUT /seller/orders/{id}/items/{productId}/return: the product's seller accepts (on receipt) or refuses a return."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, require_seller, respond
from goodsdrop.order_desk import ReturnDecision, decide_return
from goodsdrop.orders import parse_order_id
from goodsdrop.products import parse_product_id
from goodsdrop.responses import SellerOrderLine

logger = Logger()
app = make_resolver()


@app.put("/seller/orders/<order_id>/items/<product_id>/return")
def put(order_id: str, product_id: str, body: ReturnDecision) -> Response[SellerOrderLine]:
    seller = require_seller(app)
    return respond(200, decide_return(seller, parse_order_id(order_id), parse_product_id(product_id), body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
