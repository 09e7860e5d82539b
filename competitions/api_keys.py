"""API keys: the credential of the REST API and of the Kaggle CLI.

A key is shown to its owner once, when it is created; only its SHA-256 is stored, so a leaked
database does not leak usable keys. Keys are long random strings, so an unsalted fast hash is
enough (there is no dictionary to attack) and lets a request find its key with one indexed
lookup instead of trying every row.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from competitions.models import ApiKey, User

# last_used_at is informative; writing it on every request would turn each read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@transaction.atomic
def api_key_create(user: User) -> str:
    """Create the user's key, replacing (and so invalidating) any previous one.

    Returns the plaintext key: the only time it exists outside the user's hands.
    """
    # 32 hex characters, the shape of a Kaggle key, so kaggle.json files look familiar.
    key = secrets.token_hex(16)
    api_key = ApiKey.objects.select_for_update().filter(user=user).first() or ApiKey(user=user)
    api_key.key_hash = _hash(key)
    api_key.prefix = key[:8]
    api_key.created_at = timezone.now()
    api_key.last_used_at = None
    api_key.full_clean()
    api_key.save()
    return key


def api_key_user(key: str) -> User | None:
    """The active user owning this key, or None. Records when the key was last used."""
    if not key or len(key) > 200:
        return None
    digest = _hash(key)
    api_key = ApiKey.objects.select_related("user").filter(key_hash=digest).first()
    # The lookup is by hash, so its timing says nothing about the key; the comparison below
    # only guards against a database collation that matched loosely.
    if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
        return None
    if not api_key.user.is_active:
        return None
    now = timezone.now()
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    ).update(last_used_at=now)
    return api_key.user
