"""A staff organizer reaches, through every admin page, only the challenges they organize.

Alice organizes "Alpha Course"; Bob organizes "Bravo Hidden Draft", a draft with a scored
submission whose private score must stay hidden. Alice is logged in through the real admin
URLs and tries every way the admin offers rows: changelists, filters, change and add forms,
inlines, raw-id pop-ups, autocomplete, and posts with Bravo's ids.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from competitions import services
from competitions.models import Competition, Participation, Submission, Team, TeamInvitation
from tests.factories import make_competition, make_submission, make_user

pytestmark = pytest.mark.django_db

FOREIGN_TITLE = "Bravo Hidden Draft"
FOREIGN_TEAM = "bravo-secret-team"
FOREIGN_PRIVATE = "0.8765432"


@pytest.fixture
def alice(db):
    return make_user("alice", is_staff=True)


@pytest.fixture
def alpha(alice):
    return make_competition(alice, slug="alpha", title="Alpha Course")


@pytest.fixture
def bravo(db):
    bob = make_user("bob", is_staff=True)
    bravo = make_competition(bob, slug="bravo", title=FOREIGN_TITLE, state=Competition.State.DRAFT)
    bea = make_user("bea")
    team = Team.objects.create(competition=bravo, name=FOREIGN_TEAM)
    Participation.objects.create(user=bea, competition=bravo, team=team, rules_accepted_at=timezone.now())
    make_submission(bravo, team, bea, public=0.5, private=float(FOREIGN_PRIVATE))
    return bravo


@pytest.fixture
def alpha_member(alpha, learner):
    return services.competition_join(user=learner, competition=alpha)


@pytest.fixture
def as_alice(client, alice, alpha, bravo, alpha_member):
    client.force_login(alice)
    return client


def admin_pages(alpha: Competition, participation: Participation) -> list[str]:
    autocomplete = reverse("admin:autocomplete")
    pages = [reverse("admin:index")]
    for model in ("competition", "submission", "team", "participation", "rescorerun"):
        pages += [reverse(f"admin:competitions_{model}_changelist")]
    pages += [
        reverse("admin:competitions_competition_change", args=[alpha.pk]),
        reverse("admin:competitions_team_change", args=[participation.team_id]),
        reverse("admin:competitions_team_add"),
        reverse("admin:competitions_participation_change", args=[participation.pk]),
        reverse("admin:competitions_participation_add"),
        # The raw-id lookup pop-up of a participation's team.
        reverse("admin:competitions_team_changelist") + "?_to_field=id&_popup=1",
        reverse("admin:competitions_submission_changelist") + "?q=&o=1",
        # A filter link naming another challenge's id.
        reverse("admin:competitions_submission_changelist")
        + f"?competition__id__exact={Competition.objects.get(slug='bravo').pk}",
    ]
    sources = (("participation", "team"), ("participation", "competition"), ("team", "competition"))
    for model, field in sources:
        pages.append(f"{autocomplete}?app_label=competitions&model_name={model}&field_name={field}&term=")
    return pages


def test_a_scoped_organizer_sees_no_other_challenge_anywhere(as_alice, alpha, alpha_member):
    for url in admin_pages(alpha, alpha_member):
        response = as_alice.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert FOREIGN_TITLE not in content, url
        assert FOREIGN_TEAM not in content, url


def test_the_same_pages_show_everything_to_a_superuser(admin_client, alpha, bravo, alpha_member):
    # The crawl above reaches the places where another challenge would show up.
    seen = "".join(admin_client.get(url).content.decode() for url in admin_pages(alpha, alpha_member))
    assert FOREIGN_TITLE in seen
    assert FOREIGN_TEAM in seen


def test_filters_offer_only_own_challenges(as_alice, alice, alpha):
    make_competition(alice, slug="alpha-two", title="Alpha Two")  # a filter needs two choices
    for model in ("submission", "team", "participation"):
        response = as_alice.get(reverse(f"admin:competitions_{model}_changelist"))
        choices = [
            choice["display"]
            for spec in response.context["cl"].filter_specs
            for choice in spec.choices(response.context["cl"])
        ]
        assert "Alpha Course" in choices, model
        assert FOREIGN_TITLE not in choices, model


def test_another_organizers_objects_are_out_of_reach(as_alice, bravo):
    team = Team.objects.get(competition=bravo)
    participation = Participation.objects.get(competition=bravo)
    submission = Submission.objects.get(competition=bravo)
    for url in (
        reverse("admin:competitions_competition_change", args=[bravo.pk]),
        reverse("admin:competitions_team_change", args=[team.pk]),
        reverse("admin:competitions_participation_change", args=[participation.pk]),
        reverse("admin:competitions_submission_change", args=[submission.pk]),
        reverse("admin:competitions_submission_download", args=[submission.pk]),
        reverse("admin:competitions_competition_leaderboard", args=[bravo.pk, "private"]),
    ):
        response = as_alice.get(url, follow=True)
        assert FOREIGN_TITLE not in response.content.decode(), url
        assert response.redirect_chain or response.status_code in (403, 404), url
        assert FOREIGN_PRIVATE not in response.content.decode(), url


def participation_form(participation: Participation, **overrides) -> dict:
    data = {
        "user": participation.user_id,
        "competition": participation.competition_id,
        "team": participation.team_id,
        "rules_accepted_at_0": "2026-01-01",
        "rules_accepted_at_1": "00:00:00",
    }
    data.update(overrides)
    return data


def test_a_participation_cannot_be_pointed_at_another_challenges_team(as_alice, bravo, alpha_member):
    foreign = Team.objects.get(competition=bravo)
    url = reverse("admin:competitions_participation_change", args=[alpha_member.pk])
    response = as_alice.post(url, participation_form(alpha_member, team=foreign.pk))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["team"]
    assert FOREIGN_TEAM not in response.content.decode()  # the raw-id label does not name it
    alpha_member.refresh_from_db()
    assert alpha_member.team.competition_id == alpha_member.competition_id


def test_a_participation_cannot_be_moved_into_another_challenge(as_alice, bravo, alpha_member):
    url = reverse("admin:competitions_participation_change", args=[alpha_member.pk])
    response = as_alice.post(url, participation_form(alpha_member, competition=bravo.pk))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["competition"]
    assert FOREIGN_TITLE not in response.content.decode()
    alpha_member.refresh_from_db()
    assert alpha_member.competition.slug == "alpha"


def test_my_submissions_csv_never_shows_a_foreign_teams_private_scores(
    as_alice, client, alpha, bravo, alpha_member, learner
):
    """The whole attack: point a member of Alpha (closed) at Bravo's team, then read Alpha's CSV."""
    alpha.deadline_at = timezone.now() - timedelta(minutes=1)
    alpha.save()
    foreign = Team.objects.get(competition=bravo)
    url = reverse("admin:competitions_participation_change", args=[alpha_member.pk])
    as_alice.post(url, participation_form(alpha_member, team=foreign.pk))
    client.force_login(learner)
    csv = client.get(reverse("my_submissions_csv", args=[alpha.slug]))
    assert csv.status_code == 200
    assert FOREIGN_PRIVATE[:6] not in csv.content.decode()


def team_form(team: Team, members: list[dict], initial: int) -> dict:
    data = {
        "name": team.name,
        "disqualified_reason": "",
        "memberships-TOTAL_FORMS": str(len(members)),
        "memberships-INITIAL_FORMS": str(initial),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, member in enumerate(members):
        data.update({f"memberships-{i}-{key}": value for key, value in member.items()})
        data[f"memberships-{i}-team"] = team.pk
    return data


def test_adding_a_member_through_the_team_inline_joins_the_teams_challenge(as_alice, alpha_member):
    newcomer = make_user("nina")
    team = alpha_member.team
    url = reverse("admin:competitions_team_change", args=[team.pk])
    members = [{"id": alpha_member.pk, "user": "lena"}, {"id": "", "user": newcomer.username}]
    response = as_alice.post(url, team_form(team, members, initial=1))
    assert response.status_code == 302, response.context and response.context["inline_admin_formsets"]
    added = Participation.objects.get(user=newcomer)
    assert added.team == team and added.competition_id == team.competition_id
    assert added.rules_accepted_at is not None
    page = as_alice.get(url).content.decode()
    assert 'value="nina"' in page and 'value="lena"' in page  # members are shown by username


def test_the_team_inline_cannot_set_another_challenge(as_alice, bravo, alpha_member):
    team = alpha_member.team
    url = reverse("admin:competitions_team_change", args=[team.pk])
    members = [{"id": alpha_member.pk, "user": "lena", "competition": bravo.pk}]
    response = as_alice.post(url, team_form(team, members, initial=1))
    assert response.status_code == 302
    alpha_member.refresh_from_db()
    assert alpha_member.competition.slug == "alpha"


def test_the_team_inline_refuses_someone_already_in_the_challenge(as_alice, alpha, alpha_member):
    other = Team.objects.create(competition=alpha, name="other-team")
    url = reverse("admin:competitions_team_change", args=[other.pk])
    response = as_alice.post(url, team_form(other, [{"id": "", "user": "lena"}], initial=0))
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors
    assert "already takes part" in str(errors)
    assert Participation.objects.filter(user=alpha_member.user).count() == 1
    unknown = as_alice.post(url, team_form(other, [{"id": "", "user": "nobody"}], initial=0))
    assert "no user with this username" in str(unknown.context["inline_admin_formsets"][0].formset.errors)


def test_a_team_is_added_only_to_an_own_challenge(as_alice, alpha, bravo):
    url = reverse("admin:competitions_team_add")
    refused = as_alice.post(url, {"competition": bravo.pk, "name": "sneaky", "disqualified_reason": ""})
    assert refused.status_code == 200 and refused.context["adminform"].form.errors["competition"]
    assert not Team.objects.filter(name="sneaky").exists()
    added = as_alice.post(url, {"competition": alpha.pk, "name": "fresh", "disqualified_reason": ""})
    assert added.status_code == 302
    assert Team.objects.get(name="fresh").competition == alpha


def test_co_organizer_choices_are_staff(as_alice, alpha, learner):
    response = as_alice.get(reverse("admin:competitions_competition_change", args=[alpha.pk]))
    choices = response.context["adminform"].form.fields["organizers"].queryset
    assert choices.filter(username="alice").exists()
    assert not choices.filter(pk=learner.pk).exists()


def test_models_refuse_a_team_of_another_challenge(alpha, bravo, alpha_member):
    foreign = Team.objects.get(competition=bravo)
    alpha_member.team = foreign
    with pytest.raises(ValidationError, match="another challenge"):
        alpha_member.full_clean()
    submission = Submission.objects.get(competition=bravo)
    submission.team = alpha_member.competition.teams.first()
    with pytest.raises(ValidationError, match="another challenge"):
        submission.full_clean()


def test_an_invitation_comes_from_a_member_and_goes_to_a_non_member(alpha_member, bravo):
    team = alpha_member.team
    outsider = make_user("ivan")
    TeamInvitation(team=team, invitee=outsider, invited_by=alpha_member.user).full_clean()
    with pytest.raises(ValidationError, match="already in the team"):
        TeamInvitation(team=team, invitee=alpha_member.user, invited_by=alpha_member.user).full_clean()
    with pytest.raises(ValidationError, match="Only members"):
        TeamInvitation(team=team, invitee=outsider, invited_by=make_user("mallory")).full_clean()
