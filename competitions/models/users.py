"""Accounts: the custom user model and API keys."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Custom from the first migration so that profile fields (API keys...) can be added later."""

    email = models.EmailField("email address", unique=True)
    # Set when the user opened the confirmation link sent to `email` (competitions.email_confirmation).
    # Anything that trusts the address (a challenge's allow-list) requires it.
    email_verified_at = models.DateTimeField(
        "e-mail confirmed at",
        null=True,
        blank=True,
        help_text="When the user opened the link sent to this address. Cleared when the address changes.",
    )

    def __str__(self) -> str:
        return self.username

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        user._loaded_email = user.__dict__.get("email")
        user._loaded_email_verified_at = user.__dict__.get("email_verified_at")
        return user

    def save(self, *args, **kwargs) -> None:
        # A new address is unproven: changing it (in the admin, say) clears the confirmation,
        # unless the same save sets the confirmation on purpose. A change of letter case only is
        # the same mailbox.
        loaded = getattr(self, "_loaded_email", None)
        if (
            loaded is not None
            and (self.email or "").strip().lower() != loaded.strip().lower()
            and self.email_verified_at == self._loaded_email_verified_at
        ):
            self.email_verified_at = None
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "email_verified_at"}
        super().save(*args, **kwargs)
        self._loaded_email, self._loaded_email_verified_at = self.email, self.email_verified_at


class ApiKey(models.Model):
    """A user's key for the REST API and the Kaggle CLI (sent as the HTTP Basic password).

    Only a SHA-256 of the key is stored, like a password: the key is shown once when it is
    created (with a kaggle.json download) and can be regenerated at any time.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_key")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="The key's first characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.prefix}…)"
