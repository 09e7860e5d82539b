from django.urls import path

from competitions import profile_views, team_views, views

urlpatterns = [
    path("", views.competition_list, name="competition_list"),
    path("profile/", profile_views.profile, name="profile"),
    path("join/<str:code>/", views.competition_invite, name="competition_invite"),
    path("c/<slug:slug>/", views.competition_detail, name="competition_detail"),
    path("c/<slug:slug>/data/", views.competition_data, name="competition_data"),
    # Data files only: solutions live in a storage that no URL reaches.
    path("c/<slug:slug>/data/<str:name>", views.data_file_download, name="data_file_download"),
    path("c/<slug:slug>/evaluation/", views.competition_evaluation, name="competition_evaluation"),
    path("c/<slug:slug>/rules/", views.competition_rules, name="competition_rules"),
    path("c/<slug:slug>/leaderboard/", views.competition_leaderboard, name="competition_leaderboard"),
    path("c/<slug:slug>/submit/", views.competition_submit, name="competition_submit"),
    path("c/<slug:slug>/submissions/", views.competition_submissions, name="competition_submissions"),
    path(
        "c/<slug:slug>/submissions/<int:pk>/status.json",
        views.submission_status,
        name="submission_status",
    ),
    # Teams, final selection and participants' CSV exports.
    path("c/<slug:slug>/team/", team_views.team_page, name="team_page"),
    path("c/<slug:slug>/team/invitations/<int:pk>/", team_views.invitation_answer, name="invitation_answer"),
    path("c/<slug:slug>/team/join/<str:token>/", team_views.team_join_link, name="team_join_link"),
    path("c/<slug:slug>/submissions/<int:pk>/final/", team_views.submission_select, name="submission_select"),
    path("c/<slug:slug>/leaderboard.csv", team_views.leaderboard_csv, name="leaderboard_csv"),
    path("c/<slug:slug>/submissions.csv", team_views.my_submissions_csv, name="my_submissions_csv"),
]
