"""The upload cap holds while the body streams: an oversized file is dropped, never stored, and
the learner is told why instead of "This field is required"."""

import os

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt

from competitions import upload_limits
from competitions.models import Submission
from tests.factories import perfect_submission

LIMIT = 4096
CAPPED_HANDLERS = [
    "competitions.upload_limits.SizeCappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]


class DownstreamSpy(FileUploadHandler):
    """Stands where the memory/temp-file handlers stand and records every byte it is given."""

    received: list[int] = []

    def receive_data_chunk(self, raw_data, start):
        DownstreamSpy.received.append(len(raw_data))
        return None

    def file_complete(self, file_size):
        return SimpleUploadedFile(self.file_name, b"")


class UploadForm(forms.Form):
    file = forms.FileField()
    note = forms.CharField(required=False)


@csrf_exempt
def upload_view(request):
    form = UploadForm(request.POST, request.FILES)
    upload_limits.add_upload_errors(request, form)
    if form.is_valid():
        data = form.cleaned_data["file"].read()
        return HttpResponse(f"stored {len(data)} bytes, note={form.cleaned_data['note']}")
    return HttpResponse(form.as_div(), status=400)


urlpatterns = [path("upload/", upload_view)]


@pytest.fixture
def capped(settings, tmp_path):
    settings.FILE_UPLOAD_HANDLERS = CAPPED_HANDLERS
    settings.HOLDOUT_MAX_UPLOAD_BYTES = LIMIT
    # Small enough that files go through TemporaryFileUploadHandler, so we can see its disk use.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR)
    return settings


@pytest.mark.urls(__name__)
def test_file_within_the_cap_arrives_whole(client, capped):
    response = client.post("/upload/", {"file": SimpleUploadedFile("p.csv", b"x" * LIMIT), "note": "hi"})
    assert response.status_code == 200
    assert response.content.decode() == f"stored {LIMIT} bytes, note=hi"


@pytest.mark.urls(__name__)
def test_file_over_the_cap_is_dropped_with_a_clear_message(client, capped):
    response = client.post(
        "/upload/", {"note": "kept", "file": SimpleUploadedFile("big preds.csv", b"x" * (LIMIT + 1))}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert escape("The file “big preds.csv” is larger than 4.0 KB") in page
    assert "This field is required" not in page
    # The other fields of the form still arrived.
    assert 'value="kept"' in page
    # The temporary file the partial upload went to is gone.
    assert os.listdir(capped.FILE_UPLOAD_TEMP_DIR) == []


@pytest.mark.urls(__name__)
def test_oversized_file_is_never_passed_on_past_the_cap(client, settings):
    settings.FILE_UPLOAD_HANDLERS = [
        "competitions.upload_limits.SizeCappedUploadHandler",
        f"{__name__}.DownstreamSpy",
    ]
    settings.HOLDOUT_MAX_UPLOAD_BYTES = LIMIT
    DownstreamSpy.received = []
    client.post("/upload/", {"file": SimpleUploadedFile("huge.csv", b"y" * (LIMIT * 50))})
    # The stream went on (the rest of the body is read and discarded) but the handlers that
    # store files saw at most one chunk's worth of this file, not its 200 KB.
    assert sum(DownstreamSpy.received) <= LIMIT


@pytest.mark.urls(__name__)
def test_second_file_field_is_judged_on_its_own_size(client, capped, settings):
    class TwoFiles(forms.Form):
        a = forms.FileField()
        b = forms.FileField()

    request_files = {
        "a": SimpleUploadedFile("a.csv", b"a" * 100),
        "b": SimpleUploadedFile("b.csv", b"b" * (LIMIT + 10)),
    }
    response = client.post("/upload/", request_files)
    request = response.wsgi_request
    rejected = upload_limits.rejected_uploads(request)
    assert [(r.field_name, r.file_name) for r in rejected] == [("b", "b.csv")]
    assert request.FILES["a"].size == 100
    form = TwoFiles(request.POST, request.FILES)
    assert upload_limits.add_upload_errors(request, form)
    assert form.errors["b"] == [rejected[0].message]
    assert "a" not in form.errors


def test_nothing_to_explain_leaves_the_form_alone(rf):
    request = rf.post("/upload/", {"note": "x"})
    form = UploadForm(request.POST, request.FILES)
    assert upload_limits.add_upload_errors(request, form) is False
    assert form.errors["file"] == ["This field is required."]


# --- the learner's submit page -----------------------------------------------------------------


def test_oversized_submission_stores_nothing(client, learner, joined, competition, capped):
    client.force_login(learner)
    body = perfect_submission(competition) + b"r999,0.5\n" * 1000
    assert len(body) > LIMIT
    response = client.post(
        reverse("competition_submit", args=[competition.slug]),
        {"file": SimpleUploadedFile("preds.csv", body), "description": "too big"},
    )
    assert response.status_code == 400
    assert not Submission.objects.exists()
    assert os.listdir(capped.FILE_UPLOAD_TEMP_DIR) == []


def test_submit_page_says_the_file_is_too_large(client, learner, joined, competition, capped):
    client.force_login(learner)
    body = b"id,target\n" + b"r000,0.5\n" * 1000
    response = client.post(
        reverse("competition_submit", args=[competition.slug]),
        {"file": SimpleUploadedFile("preds.csv", body)},
    )
    page = response.content.decode()
    assert escape("The file “preds.csv” is larger than 4.0 KB") in page
    assert "This field is required" not in page


def test_the_challenges_own_limit_applies_while_the_file_streams(
    client, learner, joined, competition, capped
):
    # A generous site-wide cap: the challenge's own 1 MB limit is the one that must bite.
    capped.HOLDOUT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
    competition.max_upload_mb = 1
    competition.save()
    client.force_login(learner)
    body = b"id,target\n" + b"r000,0.5\n" * 120_000  # about 1.1 MB
    response = client.post(
        reverse("competition_submit", args=[competition.slug]),
        {"file": SimpleUploadedFile("preds.csv", body)},
    )
    assert response.status_code == 400
    assert escape("The file “preds.csv” is larger than 1.0 MB") in response.content.decode()
    assert os.listdir(capped.FILE_UPLOAD_TEMP_DIR) == []  # never written whole
    assert not Submission.objects.exists()
