from django.urls import path

from campaigns.views import actions

urlpatterns = [
    path("<int:pk>/launch/", actions.campaign_launch, name="campaign-launch"),
    path("<int:pk>/pause/", actions.campaign_pause, name="campaign-pause"),
    path("<int:pk>/resume/", actions.campaign_resume, name="campaign-resume"),
    path("<int:pk>/cancel/", actions.campaign_cancel, name="campaign-cancel"),
    path("<int:pk>/retry-failed/", actions.campaign_retry_failed, name="campaign-retry-failed"),
    path("<int:pk>/retarget/", actions.campaign_retarget, name="campaign-retarget"),
]
