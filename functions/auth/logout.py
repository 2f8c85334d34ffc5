"""POST /auth/logout: end the caller's session; its tokens are refused from the next request (member)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver
from goodsdrop.sessions import logout

logger = Logger()
app = make_resolver()


@app.post("/auth/logout")
def post() -> Response[None]:
    caller = current_caller(app)
    logout(caller.member_id, caller.session_id, caller.token_id, caller.token_expires_at)
    return Response(status_code=204, body="")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
