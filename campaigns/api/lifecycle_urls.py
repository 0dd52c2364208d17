from django.urls import path

from campaigns.api import ab, lifecycle, reporting

urlpatterns = [
    path("campaigns/<int:pk>/launch/", lifecycle.LaunchView.as_view(), name="api-campaign-launch"),
    path("campaigns/<int:pk>/pause/", lifecycle.PauseView.as_view(), name="api-campaign-pause"),
    path("campaigns/<int:pk>/resume/", lifecycle.ResumeView.as_view(), name="api-campaign-resume"),
    path("campaigns/<int:pk>/cancel/", lifecycle.CancelView.as_view(), name="api-campaign-cancel"),
    path(
        "campaigns/<int:pk>/retry-failed/",
        lifecycle.RetryFailedView.as_view(),
        name="api-campaign-retry-failed",
    ),
    path(
        "campaigns/<int:pk>/retarget/",
        lifecycle.RetargetView.as_view(),
        name="api-campaign-retarget",
    ),
    path("campaigns/<int:pk>/stats/", reporting.StatsView.as_view(), name="api-campaign-stats"),
    path(
        "campaigns/<int:pk>/timeline/",
        reporting.TimelineView.as_view(),
        name="api-campaign-timeline",
    ),
    path(
        "campaigns/<int:pk>/recipients/",
        reporting.RecipientsView.as_view(),
        name="api-campaign-recipients",
    ),
    path(
        "campaigns/<int:pk>/results.csv",
        reporting.ResultsCsvView.as_view(),
        name="api-campaign-results-csv",
    ),
    path("campaigns/<int:pk>/clicks/", lifecycle.ClicksView.as_view(), name="api-campaign-clicks"),
    path("campaigns/<int:pk>/ab/", ab.AbReportView.as_view(), name="api-campaign-ab"),
    path("campaigns/<int:pk>/ab/winner/", ab.AbWinnerView.as_view(), name="api-campaign-ab-winner"),
]
