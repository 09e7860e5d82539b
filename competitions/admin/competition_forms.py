"""The challenge page's forms: the hidden solution, its split and features, and bundle import."""

from django import forms
from django.core.exceptions import ValidationError

from competitions import services
from competitions.models import Competition

SPLIT_FIELDS = ("public_fraction", "split_seed")


class BundleImportForm(forms.Form):
    bundle = forms.FileField(
        help_text="A zip written by “Export as a bundle” or manage.py export_competition."
    )


PREPARE_FIELDS = ("metric", "id_column", "target_column")


class CompetitionAdminForm(forms.ModelForm):
    solution_upload = forms.FileField(
        required=False,
        label="Solution file (CSV)",
        help_text="The hidden test labels: the id column, the target column and optionally a Usage "
        "column (Public/Private). Validated on save; never shown to participants.",
    )
    features_upload = forms.FileField(
        required=False,
        label="Hidden test features (model challenges)",
        help_text="CSV (id column + numeric features) or NPZ (arrays 'ids' and 'x'). Learners' models "
        "run on these; their ids must be exactly the solution's. Never shown to participants.",
    )
    resplit = forms.BooleanField(
        required=False,
        label="Re-split the solution",
        help_text="Draw a new public/private split (secret unless a seed is set). Needed to confirm a "
        "change of the public fraction or seed; otherwise the stored split is kept, also when a "
        "solution with the same ids is uploaded again. Existing submissions should then be re-scored.",
    )

    class Meta:
        model = Competition
        fields = "__all__"  # noqa: DJ007 - the admin passes the fieldsets' fields

    def clean(self):
        cleaned = super().clean()
        self.prepared = self.features = None
        if self.errors:
            return cleaned
        upload = cleaned.get("solution_upload")
        has_solution = bool(self.instance.pk and self.instance.solution)
        split_changed = has_solution and any(f in self.changed_data for f in SPLIT_FIELDS)
        if split_changed and not upload and not cleaned.get("resplit"):
            raise ValidationError(
                {
                    "resplit": "The public fraction or split seed changed. Tick “Re-split the "
                    "solution” to re-assign rows, or restore the previous values."
                }
            )
        resplit = bool(cleaned.get("resplit"))
        needs_prepare = upload or (
            has_solution and (resplit or split_changed or any(f in self.changed_data for f in PREPARE_FIELDS))
        )
        if needs_prepare:
            self._prepare(cleaned, upload, resplit=resplit)
        self._check_features(cleaned)
        return cleaned

    def _check_features(self, cleaned: dict) -> None:
        features = cleaned.get("features_upload")
        if features is None or self.errors:
            return
        if cleaned.get("kind") != Competition.Kind.MODEL:
            self.add_error("features_upload", "Hidden features are only used by model challenges.")
            return
        self.instance.id_column = cleaned["id_column"]
        prepared = self.prepared[0] if self.prepared else None
        try:
            self.features = services.features_validate(features, competition=self.instance, prepared=prepared)
        except ValidationError as exc:
            self.add_error("features_upload", exc.messages)

    def _prepare(self, cleaned: dict, upload, *, resplit: bool) -> None:
        source = upload or self.instance.solution.open("rb")
        keep = None if resplit or not self.instance.pk else services.stored_split(self.instance)
        try:
            self.prepared = services.solution_prepare_upload(
                source,
                id_column=cleaned["id_column"],
                target_column=cleaned["target_column"],
                metric=cleaned["metric"],
                public_fraction=cleaned["public_fraction"],
                seed=cleaned["split_seed"],
                keep_split=keep,
            )
        except ValidationError as exc:
            self.add_error("solution_upload" if upload else None, exc.messages)
        finally:
            if not upload:
                source.close()
