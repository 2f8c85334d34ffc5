"""POST /members/verify/resend: mail a new verification link to the caller (member; 3 per hour)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import current_caller, json_response, make_resolver
from goodsdrop.members import resend_verification

logger = Logger()
app = make_resolver()


@app.post("/members/verify/resend")
def post():
    caller = current_caller(app)
    resend_verification(caller.member_id)
    return json_response(202, {"sent": True})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
