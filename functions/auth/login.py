"""POST /auth/login: email and password → access and refresh tokens (anyone; throttled)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, respond, source_ip
from goodsdrop.responses import TokenPair
from goodsdrop.sessions import LoginRequest, login

logger = Logger()
app = make_resolver()


@app.post("/auth/login")
def post(body: LoginRequest) -> Response[TokenPair]:
    return respond(200, login(body, source_ip(app)).to_json(), {"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
