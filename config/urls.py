from django.contrib import admin
from django.urls import include, path

from competitions import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/signup/", views.signup, name="signup"),
    # login, logout (POST only), password change and the password reset flow.
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("config.api_urls")),
    path("", include("competitions.urls")),
]
