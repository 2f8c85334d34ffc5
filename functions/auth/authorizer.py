"""API Gateway Lambda authorizer (REQUEST type): validates the bearer access token.

Allow → the member's id, role and email-verified flag reach handlers in
`requestContext.authorizer`. A bad token → Deny with an `errorCode` that the Api's
ACCESS_DENIED gateway response turns into the contract's 401 body (TOKEN_EXPIRED, UNAUTHORIZED).
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from goodsdrop.errors import Unauthorized
from goodsdrop.tokens import verify_access_token

logger = Logger()


def _policy(event: APIGatewayAuthorizerRequestEvent, principal: str, context: dict) -> APIGatewayAuthorizerResponse:
    arn = event.parsed_arn
    return APIGatewayAuthorizerResponse(principal_id=principal, region=arn.region, aws_account_id=arn.aws_account_id,
                                        api_id=arn.api_id, stage=arn.stage, context=context)


@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: object) -> dict:  # noqa: ARG001 - Lambda's signature
    header = event.headers.get("authorization") or event.headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("expected 'Authorization: Bearer <access token>'")
        claims = verify_access_token(token.strip())
    except Unauthorized as err:
        policy = _policy(event, "anonymous", {"errorCode": err.code, "errorMessage": err.message})
        policy.deny_all_routes()
        return policy.asdict()
    policy = _policy(event, claims.member_id, {
        "memberId": claims.member_id, "role": claims.role, "emailVerified": str(claims.email_verified).lower(),
        "tokenId": claims.token_id, "sessionId": claims.session_id, "expiresAt": claims.expires_at,
    })
    policy.allow_all_routes()
    return policy.asdict()
