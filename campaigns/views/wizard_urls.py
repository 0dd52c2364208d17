from django.urls import path

from campaigns.views import wizard

urlpatterns = [
    path("", wizard.campaign_list, name="campaign-list"),
    path("new/", wizard.campaign_new, name="campaign-new"),
    path("<int:pk>/setup/<slug:step>/", wizard.campaign_wizard, name="campaign-wizard"),
    path("<int:pk>/duplicate/", wizard.campaign_duplicate, name="campaign-duplicate"),
    path("<int:pk>/delete/", wizard.campaign_delete, name="campaign-delete"),
    path("<int:pk>/skipped.csv", wizard.campaign_skipped_csv, name="campaign-skipped-csv"),
]
