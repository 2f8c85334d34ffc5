"""POST /members: sign up (anyone); 201 with the member, and a verification mail through SES."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from goodsdrop.http import json_response, make_resolver
from goodsdrop.members import SignUp, sign_up

logger = Logger()
app = make_resolver()


@app.post("/members")
def post(body: SignUp):
    member = sign_up(body)
    return json_response(201, member.to_json(), {"Location": "/members/me"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
