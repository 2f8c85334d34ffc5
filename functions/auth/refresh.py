"""POST /auth/refresh: rotate a refresh token into a new pair (anyone holding one)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, respond
from goodsdrop.responses import TokenPair
from goodsdrop.sessions import RefreshRequest, refresh

logger = Logger()
app = make_resolver()


@app.post("/auth/refresh")
def post(body: RefreshRequest) -> Response[TokenPair]:
    return respond(200, refresh(body).to_json(), {"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
