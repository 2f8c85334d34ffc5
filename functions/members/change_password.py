"""PATCH /members/me/password: change the password with the current one; other sessions end (member)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, respond, source_ip
from goodsdrop.members import PasswordChange, change_password
from goodsdrop.responses import PasswordChanged

logger = Logger()
app = make_resolver()


@app.patch("/members/me/password")
def patch(body: PasswordChange) -> Response[PasswordChanged]:
    caller = current_caller(app)
    ended = change_password(caller.member_id, caller.session_id, body, source_ip(app))
    return respond(200, {"passwordChanged": True, "otherSessionsRevoked": ended})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
