from django.urls import path

from campaigns.views import detail

urlpatterns = [
    path("<int:pk>/", detail.campaign_detail, name="campaign-detail"),
    path("<int:pk>/export.csv", detail.campaign_export, name="campaign-export"),
]
