from django.urls import path

from campaigns.ab import views

urlpatterns = [
    path("<int:pk>/ab/", views.campaign_ab_setup, name="campaign-ab-setup"),
    path("<int:pk>/ab/winner/", views.campaign_ab_winner, name="campaign-ab-winner"),
]
