"""E-mail addresses are confirmed by a link before an allow-list trusts them."""

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from competitions import email_confirmation, services
from competitions.models import Participation, User
from tests.factories import PASSWORD, make_competition, make_user


def _link(mail) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", mail.body)
    assert match, mail.body
    return match.group(1)


def _signup(client: Client, username: str = "newbie", email: str = "newbie@school.org"):
    return client.post(
        reverse("signup"),
        {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD},
        follow=True,
    )


@pytest.fixture
def classroom(organizer):
    """A challenge open only to addresses at school.org."""
    return make_competition(organizer, slug="classroom", join_allowlist="@school.org\n")


def _join(client: Client, competition):
    return client.post(reverse("competition_rules", args=[competition.slug]), {"accept_rules": "on"})


def test_signup_sends_a_link_that_confirms_the_address(client, db, mailoutbox):
    page = _signup(client).content.decode()
    assert "We sent a link to newbie@school.org" in page
    user = User.objects.get(username="newbie")
    assert not user.email_verified
    (mail,) = mailoutbox
    assert mail.to == ["newbie@school.org"]

    response = client.get(_link(mail), follow=True)
    assert response.status_code == 200
    assert "newbie@school.org is confirmed" in response.content.decode()
    user.refresh_from_db()
    assert user.email_verified


def test_an_allow_list_needs_a_confirmed_address_and_says_so(client, db, classroom, mailoutbox):
    _signup(client)
    response = _join(client, classroom)
    assert response.status_code == 400
    page = response.content.decode()
    assert "confirm your e-mail address first" in page
    assert "We sent a link to newbie@school.org" in page
    assert "Send the confirmation link again" in page
    assert not Participation.objects.filter(competition=classroom).exists()

    client.get(_link(mailoutbox[0]))
    assert _join(client, classroom).status_code == 302
    assert Participation.objects.filter(competition=classroom, user__username="newbie").exists()


def test_a_confirmed_address_off_the_list_is_still_refused(client, db, classroom, mailoutbox):
    _signup(client, email="newbie@elsewhere.org")
    client.get(_link(mailoutbox[0]))
    response = _join(client, classroom)
    assert response.status_code == 400
    assert "yours is not on its list" in response.content.decode()


def test_unconfirmed_users_can_still_join_challenges_without_a_list(client, db, competition):
    _signup(client)
    assert _join(client, competition).status_code == 302


def test_joining_a_team_in_a_listed_challenge_needs_a_confirmed_address(classroom, learner, organizer):
    # Team invitations enter the challenge through the same join: no way around the list.
    learner.email = "lena@school.org"
    learner.save()
    with pytest.raises(ValidationError, match="confirm your e-mail address first"):
        services.competition_join(user=learner, competition=classroom)


def test_changing_the_address_clears_the_confirmation_and_voids_old_links(db, classroom):
    user = make_user("mia", email="mia@school.org", email_verified_at=timezone.now())
    old_token = email_confirmation.confirmation_token(user)
    user = User.objects.get(pk=user.pk)
    user.email = "Mia@School.org"  # the same mailbox
    user.save()
    assert user.email_verified

    user.email = "mia@attacker.example"
    user.save(update_fields=["email"])
    user.refresh_from_db()
    assert not user.email_verified
    with pytest.raises(ValidationError, match="no longer uses"):
        email_confirmation.email_confirm(old_token)
    user.refresh_from_db()
    assert not user.email_verified


def test_an_admin_may_change_the_address_and_confirm_it_in_one_save(db):
    user = make_user("noor")
    user = User.objects.get(pk=user.pk)
    user.email, user.email_verified_at = "noor@school.org", timezone.now()
    user.save()
    user.refresh_from_db()
    assert user.email_verified


@pytest.mark.parametrize("mangle", ["forged", "expired", "truncated"])
def test_broken_links_explain_and_confirm_nothing(client, learner, monkeypatch, mangle):
    token = email_confirmation.confirmation_token(learner)
    if mangle == "forged":
        token = email_confirmation.confirmation_token(User(pk=learner.pk + 1, email="x@y.z"))[:-3] + "abc"
    elif mangle == "truncated":
        token = token[:-5]
    else:
        monkeypatch.setattr(email_confirmation, "CONFIRMATION_MAX_AGE", timedelta(seconds=-1))
    response = client.get(reverse("email_confirm", args=[token]))
    assert response.status_code == 400
    assert "This link did not work" in response.content.decode()
    learner.refresh_from_db()
    assert not learner.email_verified


def test_resend_sends_a_fresh_link_and_returns_to_the_page(client, learner, classroom, mailoutbox):
    client.force_login(learner)
    rules = reverse("competition_rules", args=[classroom.slug])
    response = client.post(reverse("email_confirm_resend"), {"next": rules})
    assert response.status_code == 302 and response["Location"] == rules
    (mail,) = mailoutbox
    assert mail.to == ["lena@example.com"]
    client.get(_link(mail))
    learner.refresh_from_db()
    assert learner.email_verified
    # Confirmed: nothing more to send.
    client.post(reverse("email_confirm_resend"))
    assert len(mailoutbox) == 1


def test_resend_ignores_an_offsite_next_and_needs_sign_in(client, learner, mailoutbox):
    anonymous = Client().post(reverse("email_confirm_resend"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client.force_login(learner)
    response = client.post(reverse("email_confirm_resend"), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("profile")


def test_a_mail_server_failure_is_a_message_not_a_500(client, learner, settings, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr(email_confirmation, "send_mail", refuse)
    client.force_login(learner)
    page = client.post(reverse("email_confirm_resend"), follow=True).content.decode()
    assert "could not be sent just now" in page


def test_the_profile_shows_whether_the_address_is_confirmed(client, learner):
    client.force_login(learner)
    page = client.get(reverse("profile")).content.decode()
    assert "not confirmed" in page and "Send the link again" in page
    User.objects.filter(pk=learner.pk).update(email_verified_at=timezone.now())
    page = client.get(reverse("profile")).content.decode()
    assert "not confirmed" not in page and "confirmed" in page


def test_the_migration_confirms_superusers_only(db):
    migration = importlib.import_module("competitions.migrations.0004_email_verified")
    admin = make_user("root", is_superuser=True, is_staff=True)
    staff = make_user("teacher", is_staff=True)
    plain = make_user("pupil")
    migration.superusers_are_confirmed(apps, None)
    confirmed = set(User.objects.filter(email_verified_at__isnull=False).values_list("username", flat=True))
    assert confirmed == {admin.username}
    assert staff.username not in confirmed and plain.username not in confirmed


def test_the_admin_shows_and_filters_confirmation(admin_client, learner):
    User.objects.filter(pk=learner.pk).update(email_verified_at=timezone.now())
    make_user("pupil")
    changelist = reverse("admin:competitions_user_changelist")
    unconfirmed = admin_client.get(changelist, {"email_verified_at__isempty": "1"}).content.decode()
    assert "pupil" in unconfirmed and ">lena<" not in unconfirmed
    change = admin_client.get(reverse("admin:competitions_user_change", args=[learner.pk])).content.decode()
    assert "E-mail confirmed at" in change


def test_a_completed_password_reset_confirms_the_address(client, learner, mailoutbox):
    client.post(reverse("password_reset"), {"email": "lena@example.com"})
    link = re.search(r"https?://[^/]+(/\S+)", mailoutbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert not User.objects.get(pk=learner.pk).email_verified  # opening the link is not enough
    new = "another-long-password-77"
    client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    learner.refresh_from_db()
    assert learner.check_password(new) and learner.email_verified
