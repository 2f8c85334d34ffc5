"""POST /members: sign up (anyone; limited per source network); 202 whether or not the email was taken."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import make_resolver, respond, source_ip
from goodsdrop.members import SignUp, sign_up
from goodsdrop.responses import SignUpAccepted

logger = Logger()
app = make_resolver()


@app.post("/members")
def post(body: SignUp) -> Response[SignUpAccepted]:
    # The same Location whether or not the address was new: the answer never tells which.
    return respond(202, sign_up(body, source_ip(app)), {"Location": "/members/me"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
