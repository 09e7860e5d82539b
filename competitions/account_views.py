"""Confirming the e-mail address: the link from the e-mail, asking for a new one, and the
password reset (whose link, too, proves the user reads mail at their address)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, PasswordResetConfirmView, PasswordResetView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from competitions.email_confirmation import email_confirm, email_confirmation_send
from competitions.models import User
from competitions.ratelimit import rate_limited

# Django's own sign-in and password reset views, under their limits (config.urls routes them
# ahead of django.contrib.auth.urls).
sign_in = rate_limited("login")(LoginView.as_view())
password_reset = rate_limited("password_reset")(PasswordResetView.as_view())


@require_GET
def email_confirm_link(request: HttpRequest, token: str) -> HttpResponse:
    """Opened from the e-mail, signed in or not: the signed token is the authority."""
    try:
        user = email_confirm(token)
    except ValidationError as exc:
        return render(
            request, "registration/email_confirmation_failed.html", {"error": exc.messages[0]}, status=400
        )
    messages.success(request, f"Thank you: {user.email} is confirmed.")
    return redirect("profile" if request.user.is_authenticated else "login")


@rate_limited("email_confirm")
@login_required
@require_POST
def email_confirm_resend(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.email_verified:
        messages.info(request, f"{user.email} is already confirmed.")
    elif email_confirmation_send(request, user):
        messages.success(
            request, f"We sent a new confirmation link to {user.email}. Open it, then come back."
        )
    else:
        messages.error(request, "The confirmation e-mail could not be sent just now; please try again later.")
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(target if safe and target else "profile")


@method_decorator(rate_limited("password_reset"), name="dispatch")
class PasswordResetConfirm(PasswordResetConfirmView):
    """Django's view. Its token hashes the current address, so a completed reset shows the user
    reads mail there: the address counts as confirmed (an existing account's quickest way)."""

    def form_valid(self, form):
        response = super().form_valid(form)
        User.objects.filter(pk=form.user.pk, email=form.user.email, email_verified_at__isnull=True).update(
            email_verified_at=timezone.now()
        )
        return response
