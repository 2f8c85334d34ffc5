"""POST /members/verify/resend: mail a new verification link to the caller (member; 3 per hour)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, make_resolver, respond
from goodsdrop.members import resend_verification
from goodsdrop.responses import MailSent

logger = Logger()
app = make_resolver()


@app.post("/members/verify/resend")
def post() -> Response[MailSent]:
    caller = current_caller(app)
    resend_verification(caller.member_id)
    return respond(202, {"sent": True})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
