"""Confirming that a user controls their e-mail address, before anything relies on it.

Sign-up sends a link; opening it sets User.email_verified_at. The link carries a signed token
(django.core.signing.TimestampSigner, keyed by SECRET_KEY) naming the user and the address it
was sent to, so it expires after CONFIRMATION_MAX_AGE and stops working once the address
changes. Nothing is stored per link, so asking for a new one does not invalidate the old one.
"""

import logging
from datetime import timedelta

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from competitions.models import User

log = logging.getLogger(__name__)

SALT = "holdout.email-confirmation"
CONFIRMATION_MAX_AGE = timedelta(days=3)


def confirmation_token(user: User) -> str:
    payload = {"u": user.pk, "e": user.email.strip().lower()}
    return signing.TimestampSigner(salt=SALT).sign_object(payload, compress=True)


def email_confirmation_send(request: HttpRequest, user: User) -> bool:
    """E-mail `user` a confirmation link. False (logged) when the mail server refused it: the
    caller says so instead of failing the whole request."""
    url = request.build_absolute_uri(reverse("email_confirm", args=[confirmation_token(user)]))
    body = render_to_string(
        "registration/email_confirmation_email.txt",
        {"user": user, "url": url, "days": CONFIRMATION_MAX_AGE.days},
    )
    try:
        send_mail("Confirm your e-mail address for Holdout", body, None, [user.email])
    except Exception:
        log.exception("could not send the confirmation e-mail to user %s", user.pk)
        return False
    return True


def email_confirm(token: str) -> User:
    """The user whose address `token` confirms, now confirmed. ValidationError with a message
    for the user when the link is forged, expired or for an address the account no longer has."""
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=CONFIRMATION_MAX_AGE)
        user_id, email = int(data["u"]), str(data["e"])
    except signing.SignatureExpired:
        raise ValidationError(
            f"This confirmation link has expired (links work for {CONFIRMATION_MAX_AGE.days} days). "
            "Sign in and ask for a new one on your profile page."
        ) from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise ValidationError(
            "This confirmation link is not valid. Copy the whole link from the e-mail, or sign in "
            "and ask for a new one on your profile page."
        ) from None
    # Conditional on the address: a change of address between sending and opening wins.
    User.objects.filter(
        pk=user_id, is_active=True, email__iexact=email, email_verified_at__isnull=True
    ).update(email_verified_at=timezone.now())
    user = User.objects.filter(pk=user_id, is_active=True, email__iexact=email).first()
    if user is None:
        raise ValidationError(
            "This confirmation link was sent to an address this account no longer uses. Sign in "
            "and ask for a new one on your profile page."
        )
    return user
