"""Outgoing mail through Amazon SES (boto3; moto's server or LocalStack locally)."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from aws_lambda_powertools import Logger

from goodsdrop.clients import aws_client
from goodsdrop.settings import settings

logger = Logger(child=True)


def verification_link(token: str) -> str:
    """The link in the verification mail: the storefront's verification page (`#/verify?token=...`), which
    asks `GET /members/verify` and says verified / expired / already used / replaced by a newer link.
    The token sits in the fragment, so it never reaches the storefront's host or its logs."""
    return f"{settings.storefront_url.rstrip('/')}/#/verify?{urlencode({'token': token})}"


def _send(email: str, subject: str, text: str, body_html: str, kind: str) -> str:
    response = aws_client("ses").send_email(
        Source=settings.mail_sender,
        Destination={"ToAddresses": [email]},
        Message={
            "Subject": {"Data": subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": text, "Charset": "UTF-8"}, "Html": {"Data": body_html, "Charset": "UTF-8"}},
        },
    )
    message_id = str(response["MessageId"])
    logger.info(f"{kind} mail sent", extra={"message_id": message_id})
    return message_id


def send_verification_mail(email: str, name: str, token: str) -> str:
    """Send the verification mail for `token` to `email`; returns SES's message id."""
    link = verification_link(token)
    text = (f"Hello {name},\n\nplease confirm your email address for GoodsDrop by opening this link "
            f"within 24 hours:\n\n{link}\n\nIf you did not sign up, ignore this mail.\n")
    body_html = (f"<p>Hello {html.escape(name)},</p><p>please confirm your email address for GoodsDrop "
                 f"within 24 hours:</p><p><a href=\"{html.escape(link)}\">{html.escape(link)}</a></p>"
                 "<p>If you did not sign up, ignore this mail.</p>")
    return _send(email, "Confirm your GoodsDrop email address", text, body_html, "verification")


def send_already_registered_mail(email: str) -> str:
    """Tell the owner of `email` that someone signed up with it again (the API answers a sign-up with
    a taken address like any other, so only the address's owner learns that it is taken)."""
    sign_in = f"{settings.public_base_url.rstrip('/')}/"
    text = ("Hello,\n\nsomeone just tried to create a GoodsDrop account with this email address, which "
            f"already has one. If it was you, sign in instead:\n\n{sign_in}\n\n"
            "If it was not you, ignore this mail: nothing was changed.\n")
    body_html = ("<p>Hello,</p><p>someone just tried to create a GoodsDrop account with this email address, "
                 f"which already has one. If it was you, <a href=\"{html.escape(sign_in)}\">sign in</a> "
                 "instead.</p><p>If it was not you, ignore this mail: nothing was changed.</p>")
    return _send(email, "Your GoodsDrop account already exists", text, body_html, "already-registered")
