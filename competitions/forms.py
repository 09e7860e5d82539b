"""Forms for the learner's pages. Cheap checks only: the services and the engine own the rest."""

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.template.defaultfilters import filesizeformat

from competitions.models import Competition, User

# What a prediction upload may be called; the engine reads the content and decides for real.
PREDICTION_SUFFIXES = (".csv", ".csv.gz", ".gz", ".zip")


class SignupForm(UserCreationForm):
    """Username, e-mail and the password twice; Django's password validators apply."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["email"].help_text = (
            "We send a link to confirm it. It is used to reset your password and, for challenges "
            "open only to a school's or a class's addresses, to check you may join."
        )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        # The unique constraint is case-sensitive; two spellings of one address are one person.
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address already exists.")
        return email


class JoinForm(forms.Form):
    accept_rules = forms.BooleanField(
        label="I accept the rules",
        error_messages={"required": "Tick “I accept the rules” to join this challenge."},
    )


class SubmissionForm(forms.Form):
    file = forms.FileField(label="Prediction file")
    description = forms.CharField(
        label="Description (optional)",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What changed in this model?"}),
    )

    def __init__(self, competition: Competition, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.competition = competition
        field = self.fields["file"]
        field.help_text = f"At most {filesizeformat(competition.max_upload_bytes)}."
        if competition.kind == Competition.Kind.PREDICTIONS:
            field.help_text = f"CSV, optionally compressed (.csv.gz, .zip). {field.help_text}"
            field.widget.attrs["accept"] = ",".join(PREDICTION_SUFFIXES)
        else:
            field.label = "Model file"
            field.help_text = f"A Keras 3 model saved with model.save('model.keras'). {field.help_text}"
            field.widget.attrs["accept"] = ".keras"

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        limit = self.competition.max_upload_bytes
        if uploaded.size > limit:
            raise forms.ValidationError(
                f"The file is {filesizeformat(uploaded.size)}; this challenge accepts at most "
                f"{filesizeformat(limit)}."
            )
        name = (uploaded.name or "").lower()
        if self.competition.kind == Competition.Kind.PREDICTIONS and not name.endswith(PREDICTION_SUFFIXES):
            raise forms.ValidationError(
                "Upload a .csv file (or .csv.gz, .gz, .zip): predictions are read as CSV."
            )
        if self.competition.kind == Competition.Kind.MODEL and not name.endswith(".keras"):
            raise forms.ValidationError(
                "Upload a .keras file (Keras 3: model.save('model.keras')). HDF5 (.h5) and pickled "
                "models are not accepted."
            )
        return uploaded


class InviteForm(forms.Form):
    username = forms.CharField(label="Invite by username", max_length=150)


class TeamNameForm(forms.Form):
    name = forms.CharField(label="Team name", max_length=100)
