from django.urls import path

from inbox import views

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:pk>/", views.conversation_detail, name="conversation-detail"),
    path("<int:pk>/reply/", views.conversation_reply_view, name="conversation-reply"),
    path("<int:pk>/read/", views.conversation_mark_read, name="conversation-read"),
]
