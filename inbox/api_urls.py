from django.urls import path

from inbox import api

urlpatterns = [
    path("conversations/", api.ConversationList.as_view(), name="api-conversation-list"),
    path(
        "conversations/<int:pk>/messages/",
        api.ConversationMessages.as_view(),
        name="api-conversation-messages",
    ),
    path(
        "conversations/<int:pk>/reply/",
        api.ConversationReply.as_view(),
        name="api-conversation-reply",
    ),
    path(
        "conversations/<int:pk>/read/",
        api.ConversationRead.as_view(),
        name="api-conversation-read",
    ),
]
