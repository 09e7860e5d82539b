from django.urls import path

from competitions import team_views

urlpatterns = [
    path("c/<slug:slug>/team/", team_views.team_page, name="team_page"),
    path("c/<slug:slug>/team/invitations/<int:pk>/", team_views.invitation_answer, name="invitation_answer"),
    path("c/<slug:slug>/team/join/<str:token>/", team_views.team_join_link, name="team_join_link"),
    path("c/<slug:slug>/submissions/<int:pk>/final/", team_views.submission_select, name="submission_select"),
    path("c/<slug:slug>/leaderboard.csv", team_views.leaderboard_csv, name="leaderboard_csv"),
    path("c/<slug:slug>/submissions.csv", team_views.my_submissions_csv, name="my_submissions_csv"),
]
