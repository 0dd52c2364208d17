from django.contrib import admin

from inbox.models import Conversation, InboxMessage
from titanflow.admin import JSON_WITHOUT_NUL


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["wa_id", "contact_name", "phone", "unread_count", "last_message_at"]
    list_filter = ["phone"]
    search_fields = ["wa_id", "contact_name", "user_id"]
    list_select_related = ["phone"]


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    formfield_overrides = JSON_WITHOUT_NUL
    list_display = ["wamid", "conversation", "direction", "type", "status", "timestamp"]
    list_filter = ["direction", "type", "status"]
    search_fields = ["wamid", "body", "conversation__wa_id"]
    list_select_related = ["conversation"]
    raw_id_fields = ["conversation", "campaign_message"]
