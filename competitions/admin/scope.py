"""What a staff organizer reaches in the admin: the challenges they organize and what belongs to them.

Superusers see everything. Any other staff user is an organizer, and every way the admin offers
rows — changelists, change forms, choice fields, raw-id fields and their lookup pop-ups,
autocomplete, inlines, list filters and per-object permissions — goes through `scoped`, so a
new ModelAdmin, inline or filter is limited by inheriting `OrganizerScoped` and nothing else.
A model missing from `SCOPE_LOOKUPS` shows scoped organizers nothing rather than everything.
"""

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from competitions.models import (
    Competition,
    DataFile,
    Participation,
    RescoreRun,
    ScoreHistory,
    Submission,
    Team,
    TeamInvitation,
    User,
)

# The path from each model to the users who organize the challenge it belongs to.
SCOPE_LOOKUPS = {
    Competition: "organizers",
    DataFile: "competition__organizers",
    Team: "competition__organizers",
    Participation: "competition__organizers",
    Submission: "competition__organizers",
    RescoreRun: "competition__organizers",
    TeamInvitation: "team__competition__organizers",
    ScoreHistory: "submission__competition__organizers",
}


def scoped(queryset: QuerySet, user) -> QuerySet:
    """The rows of `queryset` that `user` may reach in the admin."""
    if user.is_superuser:
        return queryset
    model = queryset.model
    if model is User:
        # Accounts belong to no challenge: an organizer adds any user to a team of theirs.
        return queryset
    lookup = SCOPE_LOOKUPS.get(model)
    if lookup is None or not (user.is_active and user.is_staff):
        return queryset.none()
    # A subquery rather than a join keeps annotations (counts) and ordering intact.
    own = model._default_manager.filter(**{lookup: user}).values("pk")
    return queryset.filter(pk__in=own)


def in_scope(user, obj: Model) -> bool:
    return scoped(type(obj)._default_manager.filter(pk=obj.pk), user).exists()


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id input whose label only names rows the organizer may see.

    Django's widget looks the typed id up in the whole table, so a foreign id posted back would
    be echoed with its name next to the form error.
    """

    def __init__(self, rel, admin_site, *, queryset: QuerySet, **kwargs) -> None:
        super().__init__(rel, admin_site, **kwargs)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            if not self.queryset.filter(**{key: value}).exists():
                return "", ""
        except (ValueError, TypeError, ValidationError):
            return "", ""
        return super().label_and_url_for_value(value)


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A list filter on a relation that offers only the organizer's own rows."""

    def field_choices(self, field, request: HttpRequest, model_admin):
        queryset = scoped(field.related_model._default_manager.all(), request.user)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in queryset]


class OrganizerScoped:
    """Mixed into every ModelAdmin and inline of the app (before Django's base class).

    Access follows the competition's `organizers` list instead of Django's per-model permission
    tables, so making someone the organizer of a challenge is all it takes. For an inline,
    `obj` in the permission checks is the parent object.
    """

    def get_queryset(self, request: HttpRequest):
        return scoped(super().get_queryset(request), request.user)

    def get_field_queryset(self, db, db_field, request: HttpRequest):
        # Django's single source of choices for foreign keys and many-to-many fields.
        queryset = super().get_field_queryset(db, db_field, request)
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.using(db).all()
        if db_field.name == "organizers" and not request.user.is_superuser:
            # Co-organizers are staff; keep whoever already organizes one of the user's challenges.
            own = scoped(Competition.objects.all(), request.user)
            queryset = queryset.filter(Q(is_staff=True) | Q(organized_competitions__in=own)).distinct()
        return scoped(queryset, request.user)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name in self.raw_id_fields and "widget" not in kwargs:
            db = kwargs.get("using")
            kwargs["queryset"] = self.get_field_queryset(db, db_field, request)
            kwargs["widget"] = ScopedRawIdWidget(
                db_field.remote_field, self.admin_site, queryset=kwargs["queryset"], using=db
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _allowed(self, request: HttpRequest, obj=None) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        return obj is None or in_scope(request.user, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, obj)


class OrganizerScopedAdmin(OrganizerScoped, admin.ModelAdmin):
    """A ModelAdmin limited to the organizer's challenges, list filters included."""

    def get_list_filter(self, request: HttpRequest):
        return [self._scoped_filter(spec) for spec in super().get_list_filter(request)]

    def _scoped_filter(self, spec):
        if isinstance(spec, str) and get_fields_from_path(self.model, spec)[-1].is_relation:
            return (spec, ScopedRelatedFieldListFilter)
        return spec
