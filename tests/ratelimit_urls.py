"""A URLconf that serves the rate-limited views under other paths than config.urls does (ahead
of config.urls' own, which templates still reverse): a limit must follow its view, not a path."""

from django.contrib import admin
from django.urls import path

from competitions import account_views, views
from competitions.api import blobs, kaggle
from competitions.api import views as api_views
from config import urls

urlpatterns = [
    path("sign-in/", account_views.sign_in),
    path("staff/", admin.site.urls),
    path("join-up/", views.signup),
    path("forgot/", account_views.password_reset),
    path("forgot/<uidb64>/<token>/", account_views.PasswordResetConfirm.as_view()),
    path("resend/", account_views.email_confirm_resend),
    path("hand-in/<slug:slug>/", views.competition_submit),
    path("rest/<slug:slug>/entries/", api_views.SubmissionListCreate.as_view()),
    path("rest/<slug:slug>/entries/<int:pk>/", api_views.SubmissionDetail.as_view()),
    path("rpc/<str:service>/<str:method>", kaggle.KaggleRpc.as_view()),
    path("put/<str:token>", blobs.blob_upload),
    *urls.urlpatterns,
]
