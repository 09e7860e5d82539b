"""The learner's path in a real browser: Debian's Chromium driven by Playwright.

Nothing downloads a browser: Playwright launches the Chromium at HOLDOUT_CHROMIUM (default
/usr/bin/chromium, from `apt-get install chromium`); without it these tests skip, except in CI.
"""

import os
from pathlib import Path

import pytest
from django.db import connections

from competitions.models import Submission
from tests.factories import make_competition, perfect_submission, require_service

CHROMIUM = os.environ.get("HOLDOUT_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("HOLDOUT_SCREENSHOTS", "var/screenshots"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server):
    require_service(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes in
    # between are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(accept_downloads=True, base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()
        # ORM calls made while Playwright's event loop runs keep their connection in that
        # context; close it here, or PostgreSQL cannot drop the test database afterwards.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_learner_signs_up_joins_downloads_submits_and_sees_the_leaderboard(
    page, organizer, eager_celery, tmp_path, settings
):
    settings.HOLDOUT_POLL_INTERVAL_MS = 200
    competition = make_competition(organizer, slug="churn", title="Churn prediction")
    from competitions import services

    services.competition_generate_sample_submission(competition)

    page.goto("/")
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Username").fill("bea")
    page.get_by_label("Email").fill("bea@example.com")
    page.locator("#id_password1").fill("a-long-test-password-42")
    page.locator("#id_password2").fill("a-long-test-password-42")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_text("Welcome to Holdout").wait_for()

    page.get_by_role("link", name="Churn prediction").first.click()
    page.get_by_role("navigation", name="Challenge sections").get_by_role("link", name="Rules").click()
    page.get_by_label("I accept the rules").check()
    page.get_by_role("button", name="Join").click()
    page.get_by_text("You joined the challenge").wait_for()
    shot(page, "data-tab")

    with page.expect_download() as download:
        page.get_by_role("link", name="sample_submission.csv").click()
    downloaded = tmp_path / "sample.csv"
    download.value.save_as(downloaded)
    assert downloaded.read_bytes().startswith(b"id,target")

    good = tmp_path / "preds.csv"
    good.write_bytes(perfect_submission(competition))
    page.get_by_role("navigation", name="Challenge sections").get_by_role("link", name="Submit").click()
    page.get_by_label("Prediction file").set_input_files(str(good))
    page.get_by_label("Description").fill("perfect")
    page.get_by_role("button", name="Submit").click()
    # The page follows the status without a reload until the score shows.
    page.get_by_text("1.00000").first.wait_for()
    shot(page, "my-submissions")
    assert Submission.objects.get(description="perfect").status == Submission.Status.SCORED

    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"id,wrong\nr000,1\n")
    page.get_by_role("navigation", name="Challenge sections").get_by_role("link", name="Submit").click()
    page.get_by_label("Prediction file").set_input_files(str(broken))
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("wrong").first.wait_for()
    assert Submission.objects.get(original_name="broken.csv").status == Submission.Status.FAILED

    page.get_by_role("navigation", name="Challenge sections").get_by_role("link", name="Leaderboard").click()
    row = page.get_by_role("row").filter(has_text="bea")
    row.get_by_text("1.00000").wait_for()
    shot(page, "leaderboard")


def login(page, username: str) -> None:
    from tests.factories import PASSWORD

    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_team_invite_and_final_selection(page, organizer, learner, outsider, eager_celery, tmp_path):
    from competitions import services
    from competitions.models import Participation

    competition = make_competition(organizer, slug="duo", title="Duo challenge")
    services.competition_join(user=learner, competition=competition)
    services.competition_join(user=outsider, competition=competition)
    tabs = page.get_by_role("navigation", name="Challenge sections")

    login(page, learner.username)
    page.goto("/c/duo/team/")
    page.get_by_label("Invite by username").fill(outsider.username)
    page.get_by_role("button", name="Invite").click()
    page.get_by_text(f"Invitation sent to {outsider.username}").wait_for()
    page.get_by_role("button", name="Log out").click()

    login(page, outsider.username)
    page.goto("/c/duo/team/")
    page.get_by_text("invites you to merge").wait_for()
    page.get_by_role("button", name="Accept").click()
    page.get_by_text("You joined the team.").wait_for()
    shot(page, "team")
    assert Participation.objects.get(user=outsider).team_id == Participation.objects.get(user=learner).team_id

    good = tmp_path / "preds.csv"
    good.write_bytes(perfect_submission(competition))
    tabs.get_by_role("link", name="Submit").click()
    page.get_by_label("Prediction file").set_input_files(str(good))
    page.get_by_role("button", name="Submit").click()
    page.get_by_role("button", name="Select").wait_for()
    page.get_by_role("button", name="Select").click()
    page.get_by_role("button", name="Selected ✓").wait_for()
    shot(page, "final-selection")
    assert Submission.objects.get().is_final
