"""GET /members/verify?token=...: use the link from the verification mail (anyone, once, 24 h)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, respond
from goodsdrop.members import parse_verification_token, verify_email
from goodsdrop.responses import EmailVerified

logger = Logger()
app = make_resolver()


@app.get("/members/verify")
def get() -> Response[EmailVerified]:
    token = parse_verification_token(app.current_event.get_query_string_value("token"))
    member = verify_email(token)
    return respond(200, {"verified": True, "member": member.to_json()})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
