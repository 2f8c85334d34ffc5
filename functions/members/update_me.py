"""PATCH /members/me: change the caller's name, phone or address (member)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.members import ProfileUpdate, update_profile
from goodsdrop.responses import Member

logger = Logger()
app = make_resolver()


@app.patch("/members/me")
def patch(body: ProfileUpdate) -> Response[Member]:
    caller = current_caller(app)
    return respond(200, update_profile(caller.member_id, body).to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
