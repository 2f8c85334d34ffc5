"""GET /members/me: the caller's own profile (member)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, json_response, make_resolver
from goodsdrop.members import get_member

logger = Logger()
app = make_resolver()


@app.get("/members/me")
def get():
    caller = current_caller(app)
    return json_response(200, get_member(caller.member_id).to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
