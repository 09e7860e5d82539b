"""The organizer's side of Holdout, one module a job.

Importing the package registers every ModelAdmin (Django's autodiscover imports
`competitions.admin`); the names below are re-exported so that `competitions.admin.X` keeps
working whichever module X lives in.
"""

from django.contrib import admin

from competitions.admin.competition import CompetitionAdmin, DataFileInline
from competitions.admin.competition_forms import BundleImportForm, CompetitionAdminForm
from competitions.admin.rescoring import RescoreRunAdmin
from competitions.admin.scope import (
    SCOPE_LOOKUPS,
    OrganizerScoped,
    OrganizerScopedAdmin,
    ScopedRawIdWidget,
    ScopedRelatedFieldListFilter,
    in_scope,
    scoped,
)
from competitions.admin.submissions import SubmissionAdmin
from competitions.admin.teams import MembershipForm, MembershipInline, ParticipationAdmin, TeamAdmin
from competitions.admin.users import HoldoutUserAdmin

admin.site.site_header = "Holdout administration"
admin.site.site_title = "Holdout admin"

__all__ = [
    "SCOPE_LOOKUPS",
    "BundleImportForm",
    "CompetitionAdmin",
    "CompetitionAdminForm",
    "DataFileInline",
    "HoldoutUserAdmin",
    "MembershipForm",
    "MembershipInline",
    "OrganizerScoped",
    "OrganizerScopedAdmin",
    "ParticipationAdmin",
    "RescoreRunAdmin",
    "ScopedRawIdWidget",
    "ScopedRelatedFieldListFilter",
    "SubmissionAdmin",
    "TeamAdmin",
    "in_scope",
    "scoped",
]
