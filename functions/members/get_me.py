"""GET /members/me: the caller's own profile (member)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.members import get_member
from goodsdrop.responses import Member

logger = Logger()
app = make_resolver()


@app.get("/members/me")
def get() -> Response[Member]:
    caller = current_caller(app)
    return respond(200, get_member(caller.member_id).to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
