"""The OpenAPI schema: generated without warnings, valid, and honoured by the API.

A property-based run (schemathesis, on Hypothesis) sends generated requests to every operation
in the schema, through the WSGI application, and fails on any 5xx or any response that does not
match the schema.
"""

import copy
import json

import pytest
import schemathesis
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from competitions import services
from competitions.api_keys import api_key_create
from competitions.models import Competition, DataFile
from tests.factories import make_competition, make_user, perfect_submission

# Generated slugs would nearly always miss; these hit a competition the caller joined, a draft it
# cannot see and one that does not exist.
SLUGS = ["churn", "secret", "missing"]


def test_schema_generates_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.json"
    # --fail-on-warn turns any drf-spectacular warning (an unresolvable field, a guessed type)
    # into a failure; --validate checks the result against the OpenAPI 3 meta-schema.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(out)
    )
    schema = json.loads(out.read_text())
    assert "/api/competitions/{slug}/submissions/" in schema["paths"]
    assert not any(path.startswith("/api/v1/") for path in schema["paths"]), "the Kaggle protocol is not REST"


def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema/", {"format": "json"}).json()["info"]["title"] == "Holdout API"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    # Swagger UI comes from our static files (drf-spectacular-sidecar): no CDN, works offline.
    html = docs.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/" in html and "cdn" not in html.lower()


@pytest.fixture
def api_schema(transactional_db, eager_celery):
    """The served schema with the data it talks about: a joined competition, a draft, a submission."""
    organizer = make_user("olga", is_staff=True)
    learner = make_user("lena")
    competition = make_competition(organizer)
    make_competition(organizer, slug="secret", state=Competition.State.DRAFT)
    DataFile.objects.create(competition=competition, file=ContentFile(b"id,x\nr000,1\n", name="train.csv"))
    services.competition_join(user=learner, competition=competition)
    services.submission_create(
        user=learner,
        competition=competition,
        uploaded=ContentFile(perfect_submission(competition), name="preds.csv"),
    )
    raw = copy.deepcopy(Client().get("/api/schema/", {"format": "json"}).json())
    for operations in raw["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "slug":
                    parameter["schema"] = {"type": "string", "enum": SLUGS}
    schema = schemathesis.openapi.from_dict(raw)
    # transactional_db: requests through the real WSGI handler close and reopen connections,
    # which a test wrapped in a transaction would not survive.
    schema.app = get_wsgi_application()
    return schema, api_key_create(learner)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_never_errors_and_matches_its_schema(api_schema):
    # schemathesis' own pytest integration (schema.parametrize with a fixture) does not run on
    # pytest 9, so each operation's Hypothesis strategy is driven here directly.
    schema, key = api_schema
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def run(case):
            for headers in ({"Authorization": f"Token {key}"}, {}):
                case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{operation.method.upper()} {operation.path}: {exc}") from exc
