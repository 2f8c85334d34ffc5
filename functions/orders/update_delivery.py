"""PATCH /seller/orders/{id}/items/{productId}: the product's seller moves delivery PREPARING → SHIPPED → DELIVERED."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, require_seller, respond
from goodsdrop.orders import DeliveryChange, parse_order_id, update_delivery
from goodsdrop.products import parse_product_id
from goodsdrop.responses import DeliveryChanged

logger = Logger()
app = make_resolver()


@app.patch("/seller/orders/<order_id>/items/<product_id>")
def patch(order_id: str, product_id: str, body: DeliveryChange) -> Response[DeliveryChanged]:
    seller = require_seller(app)
    return respond(200, update_delivery(seller, parse_order_id(order_id), parse_product_id(product_id), body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
