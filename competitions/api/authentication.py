"""API-key authentication, in the two shapes clients send it.

- HTTP Basic with the key as the password, as the Kaggle CLI does with KAGGLE_USERNAME and
  KAGGLE_KEY. The username must be the key owner's: a key alone, sent under another name, is
  refused, so a typo in KAGGLE_USERNAME cannot silently act as someone else.
- `Authorization: Token <key>` (or `Bearer <key>`, what the Kaggle CLI sends when the key is in
  KAGGLE_API_TOKEN) for scripts and curl.
"""

from django.utils.crypto import constant_time_compare
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from competitions.api_keys import api_key_user

INVALID = "Invalid username or API key. Create a new key on your Holdout profile page."


class ApiKeyBasicAuthentication(authentication.BasicAuthentication):
    www_authenticate_realm = "Holdout API"

    def authenticate_credentials(self, userid, password, request=None):
        user = api_key_user(password)
        if user is None or not constant_time_compare(user.get_username(), userid):
            raise exceptions.AuthenticationFailed(INVALID)
        return (user, None)


class ApiKeyTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Token <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID) from None
        user = api_key_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed(INVALID)
        return (user, None)

    def authenticate_header(self, request) -> str:
        # A 401 names this scheme rather than Basic, so browsers using the Swagger UI get a JSON
        # error instead of a password prompt.
        return 'Token realm="Holdout API"'


class ApiKeyBasicScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyBasicAuthentication
    name = "apiKeyBasic"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "Your username, and your API key as the password (what the Kaggle CLI sends).",
        }


class ApiKeyTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyTokenAuthentication
    name = "apiKeyToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <your API key>`; create the key on your profile page.",
        }
