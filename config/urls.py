from django.contrib import admin
from django.urls import include, path

from competitions import account_views, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", account_views.sign_in, name="login"),
    path("accounts/password_reset/", account_views.password_reset, name="password_reset"),
    path("accounts/confirm-email/", account_views.email_confirm_resend, name="email_confirm_resend"),
    path("accounts/confirm-email/<str:token>/", account_views.email_confirm_link, name="email_confirm"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirm.as_view(),
        name="password_reset_confirm",
    ),
    # logout (POST only), password change and the rest of the password reset flow.
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("config.api_urls")),
    path("", include("competitions.urls")),
]
