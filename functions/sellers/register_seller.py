"""POST /sellers: the caller (verified email) opens a shop and becomes a seller (member)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.responses import Member
from goodsdrop.sellers import SellerRegistration, register_seller

logger = Logger()
app = make_resolver()


@app.post("/sellers")
def post(body: SellerRegistration) -> Response[Member]:
    caller = current_caller(app)  # verification is checked in the database, not the token
    return respond(201, register_seller(caller.member_id, body).to_json(), {"Location": "/members/me"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
