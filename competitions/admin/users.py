"""Accounts: Django's user admin plus the confirmed e-mail address."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from competitions.models import User


class HoldoutUserAdmin(UserAdmin):
    """Django's user admin, and whether the e-mail address is confirmed: an operator may confirm
    one by hand (when mail does not reach a school, say). Changing the address clears it unless
    the same save sets it (User.save)."""

    list_display = (*UserAdmin.list_display, "email_verified_at")
    list_filter = (*UserAdmin.list_filter, ("email_verified_at", admin.EmptyFieldListFilter))
    fieldsets = (*UserAdmin.fieldsets, ("E-mail address", {"fields": ("email_verified_at",)}))


admin.site.register(User, HoldoutUserAdmin)
