"""PUT /seller/orders/{id}/items/{productId}/return: the product's seller accepts (on receipt) or refuses a return."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import json_response, make_resolver, require_seller
from goodsdrop.order_desk import ReturnDecision, decide_return
from goodsdrop.orders import parse_order_id
from goodsdrop.products import parse_product_id

logger = Logger()
app = make_resolver()


@app.put("/seller/orders/<order_id>/items/<product_id>/return")
def put(order_id: str, product_id: str, body: ReturnDecision):
    seller = require_seller(app)
    return json_response(200, decide_return(seller, parse_order_id(order_id), parse_product_id(product_id), body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
