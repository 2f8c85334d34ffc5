"""PATCH /members/me: change the caller's name, phone or address (member)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, json_response, make_resolver
from goodsdrop.members import ProfileUpdate, update_profile

logger = Logger()
app = make_resolver()


@app.patch("/members/me")
def patch(body: ProfileUpdate):
    caller = current_caller(app)
    return json_response(200, update_profile(caller.member_id, body).to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
