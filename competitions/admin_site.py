"""The admin site, with its sign-in form under the same failed sign-in limit as the site's.

Installed through HoldoutAdminConfig in INSTALLED_APPS (in place of "django.contrib.admin"), so
`admin.site` and every `@admin.register` use it.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.decorators import method_decorator

from competitions.ratelimit import rate_limited


class HoldoutAdminSite(admin.AdminSite):
    @method_decorator(rate_limited("login"))
    def login(self, request, extra_context=None):
        return super().login(request, extra_context)


class HoldoutAdminConfig(AdminConfig):
    default_site = "competitions.admin_site.HoldoutAdminSite"
