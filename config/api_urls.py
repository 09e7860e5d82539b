"""URLs of the REST API (/api/...) and the Kaggle CLI protocol (/api/v1/...).

Included at the root by config.urls: `path("", include("config.api_urls"))`.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from competitions.api import blobs, kaggle, views

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/competitions/", views.CompetitionList.as_view(), name="api_competition_list"),
    path("api/competitions/<slug:slug>/", views.CompetitionDetail.as_view(), name="api_competition_detail"),
    path("api/competitions/<slug:slug>/files/", views.DataFileList.as_view(), name="api_data_file_list"),
    # The last path segment is the file name: the Kaggle CLI saves the download under it.
    path(
        "api/competitions/<slug:slug>/files/<str:name>",
        views.DataFileDownload.as_view(),
        name="api_data_file_download",
    ),
    path("api/competitions/<slug:slug>/data.zip", views.DataZipDownload.as_view(), name="api_data_zip"),
    path(
        "api/competitions/<slug:slug>/submissions/",
        views.SubmissionListCreate.as_view(),
        name="api_submission_list",
    ),
    path(
        "api/competitions/<slug:slug>/submissions/<int:pk>/",
        views.SubmissionDetail.as_view(),
        name="api_submission_detail",
    ),
    path("api/competitions/<slug:slug>/quota/", views.Quota.as_view(), name="api_quota"),
    path("api/competitions/<slug:slug>/leaderboard/", views.Leaderboard.as_view(), name="api_leaderboard"),
    # The Kaggle CLI: the signed upload URL, then every RPC as POST /api/v1/<service>/<Method>.
    path("api/v1/blobs/upload/<str:token>", blobs.blob_upload, name="kaggle_blob_upload"),
    path("api/v1/<str:service>/<str:method>", kaggle.KaggleRpc.as_view(), name="kaggle_rpc"),
    re_path(r"^api/", views.NotFoundView.as_view()),
]
