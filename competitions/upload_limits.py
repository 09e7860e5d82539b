"""Cap upload sizes while the request body streams in.

Django writes each uploaded file to memory or to a temporary file *before* any form or view
sees it, so a size check in a form only runs after the whole file has been received and
stored. `SizeCappedUploadHandler` sits first in FILE_UPLOAD_HANDLERS and counts each file's
bytes as they arrive; past `settings.HOLDOUT_MAX_UPLOAD_BYTES` it drops the file (the
temporary file is closed, which deletes it) and the rest of that file is read and discarded,
never stored. Other fields of the form still arrive.

A dropped file is simply missing from request.FILES, so a form would say "This field is
required". The handler records what it dropped on the request; `add_upload_errors(request,
form)` turns that into "The file … is larger than …" on the form's file field.

    FILE_UPLOAD_HANDLERS = [
        "competitions.upload_limits.SizeCappedUploadHandler",
        "django.core.files.uploadhandler.MemoryFileUploadHandler",
        "django.core.files.uploadhandler.TemporaryFileUploadHandler",
    ]

On the submission endpoints (the Submit page and the API's submit) the cap is the challenge's
own limit (Competition.max_upload_mb) when it is lower; everywhere else, the admin included,
it is the site-wide ceiling. A reverse proxy in front (nginx `client_max_body_size`) should
stop bodies past the ceiling before they reach Python at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import Resolver404, resolve

from competitions.models import Competition

REJECTED_ATTRIBUTE = "rejected_uploads"


@dataclass(frozen=True)
class RejectedUpload:
    field_name: str
    file_name: str
    limit_bytes: int

    @property
    def message(self) -> str:
        name = self.file_name if len(self.file_name) <= 60 else self.file_name[:59] + "…"
        # Plain spaces: the message also goes out in JSON and plain-text API errors.
        limit = filesizeformat(self.limit_bytes).replace("\xa0", " ")
        return (
            f"The file “{name}” is larger than {limit}, the most accepted here, so it was not "
            "uploaded. Compress it (.csv.gz or .zip) or upload a smaller file."
        )


class SizeCappedUploadHandler(FileUploadHandler):
    """Pass chunks on to the next handler until a file exceeds the site-wide cap, then skip it.

    It stores nothing itself (file_complete returns None), so the memory or temporary-file
    handler after it still builds the UploadedFile for files within the cap.
    """

    SUBMISSION_URLS = {"competition_submit", "api_submission_list"}

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        # Read per request, so a test's `settings` override (or a deploy's env) applies.
        self.limit = min(int(settings.HOLDOUT_MAX_UPLOAD_BYTES), self._challenge_limit(request))

    def _challenge_limit(self, request: HttpRequest | None) -> int | float:
        """The challenge's own upload limit when this request submits to one."""
        if request is None:
            return float("inf")
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return float("inf")
        if match.url_name not in self.SUBMISSION_URLS:
            return float("inf")
        mb = (
            Competition.objects.filter(slug=match.kwargs.get("slug"))
            .values_list("max_upload_mb", flat=True)
            .first()
        )
        return float("inf") if mb is None else mb * 1024 * 1024

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        # `start` counts this file's bytes before this chunk (the parser resets it per file).
        if start + len(raw_data) > self.limit:
            self._record()
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None

    def _record(self) -> None:
        if self.request is None:
            return
        rejected = RejectedUpload(
            field_name=str(self.field_name), file_name=str(self.file_name or ""), limit_bytes=self.limit
        )
        existing = getattr(self.request, REJECTED_ATTRIBUTE, None)
        if existing is None:
            existing = []
            setattr(self.request, REJECTED_ATTRIBUTE, existing)
        existing.append(rejected)


def rejected_uploads(request: HttpRequest) -> list[RejectedUpload]:
    """Files the handler dropped from this request (empty when it dropped none).

    Reading request.FILES first makes sure the body has been parsed.
    """
    request.FILES  # noqa: B018 - parsing the body is what records rejections
    return list(getattr(request, REJECTED_ATTRIBUTE, None) or [])


def add_upload_errors(request: HttpRequest, form: forms.Form) -> bool:
    """Explain dropped files on a form bound to request.FILES; True if there were any.

    Replaces the field's "This field is required" (the file never arrived) with the size
    message, so a learner learns why instead of being told to choose a file they did choose.
    Rejections for fields the form does not have become non-field errors.
    """
    rejected = rejected_uploads(request) if request.method in ("POST", "PUT", "PATCH") else []
    if not rejected or not form.is_bound:
        return False
    errors = form.errors  # runs the form's validation once
    for item in rejected:
        if item.field_name in form.fields:
            errors[item.field_name] = form.error_class([item.message], renderer=form.renderer)
            if hasattr(form, "cleaned_data"):
                form.cleaned_data.pop(item.field_name, None)
        else:
            form.add_error(None, item.message)
    return True
