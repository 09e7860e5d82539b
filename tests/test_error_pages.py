"""With DEBUG off (production), errors answer with the site's own pages and never a traceback."""

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.template import loader
from django.test import Client
from django.urls import path

from config.urls import urlpatterns as site_urlpatterns


def _boom(request):
    # A recognisable local variable: Django's debug page would print it.
    secret_local = "hidden-row-r017-label-1"  # noqa: F841
    raise RuntimeError("boom: this text must not reach the visitor")


def _forbidden(request):
    raise PermissionDenied


def _bad(request):
    raise SuspiciousOperation("bad")


urlpatterns = [
    path("test-errors/500/", _boom),
    path("test-errors/403/", _forbidden),
    path("test-errors/400/", _bad),
    *site_urlpatterns,
]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    return Client(raise_request_exception=False)


def test_an_unexpected_error_is_the_500_page_without_a_traceback(production):
    response = production.get("/test-errors/500/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    for leak in ("Traceback", "RuntimeError", "boom", "hidden-row-r017", "secret_local"):
        assert leak not in page


def test_the_500_page_needs_neither_a_context_nor_the_database(django_assert_num_queries):
    # Django renders it with an empty context (no request, no context processors), and the
    # error may well be that the database is gone.
    with django_assert_num_queries(0):
        page = loader.get_template("500.html").render()
    assert "Something went wrong on our side" in page
    assert "/static/css/holdout.css" in page


def test_an_unknown_address_is_the_404_page(production):
    response = production.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page
    assert "Back to the competitions" in page
    assert "Using the URLconf" not in page  # Django's debug 404


def test_a_hidden_challenge_is_the_same_404_page(production, organizer):
    from tests.factories import make_competition

    make_competition(organizer, slug="secret", state="draft")
    response = production.get("/c/secret/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


@pytest.mark.parametrize(
    ("url", "status", "title"),
    [("/test-errors/403/", 403, "Not allowed"), ("/test-errors/400/", 400, "Bad request")],
)
def test_forbidden_and_bad_requests_have_pages_too(production, url, status, title):
    response = production.get(url)
    assert response.status_code == status
    assert title in response.content.decode()


def test_a_form_sent_without_its_csrf_token_explains_what_to_do(settings, learner):
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "lena", "password": "x"})
    assert response.status_code == 403
    assert "reload the page and send it again" in response.content.decode()


def test_an_unknown_host_is_the_400_page(production, settings):
    settings.ALLOWED_HOSTS = ["holdout.example.org"]
    response = production.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "Bad request" in response.content.decode()
