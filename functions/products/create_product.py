"""POST /products: a seller lists a new product with its stock (201, with live stock and status)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.catalogue import NewProduct, create_product
from goodsdrop.http import make_resolver, require_seller, respond
from goodsdrop.responses import Product

logger = Logger()
app = make_resolver()


@app.post("/products")
def post(body: NewProduct) -> Response[Product]:
    caller = require_seller(app)
    product = create_product(int(caller.member_id), body)
    return respond(201, product, {"Location": f"/products/{product['id']}"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
