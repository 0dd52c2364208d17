from django.urls import path

from templates_app import views

urlpatterns = [
    path("accounts/", views.account_list, name="account-list"),
    path("accounts/new/", views.account_new, name="account-new"),
    path("accounts/<int:pk>/sync/", views.account_sync, name="account-sync"),
    path("sync/", views.accounts_sync, name="accounts-sync"),
    path("sync/status/", views.sync_status, name="sync-status"),
    path("phones/", views.phone_list, name="phone-list"),
    path("phones/<int:pk>/rate/", views.phone_rate, name="phone-rate"),
    path("templates/", views.template_list, name="template-list"),
]
