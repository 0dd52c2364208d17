"""Inbox API: conversations (searchable, unread first), their messages, replies and read marks.

A reply answers 409 when WhatsApp's 24-hour window is closed and 400 with the reason for any
other refusal, using the same sentences as the inbox page.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from inbox.models import Conversation, InboxMessage
from inbox.services.replies import ReplyError, ReplyWindowClosed, conversation_reply


class ConversationSerializer(serializers.ModelSerializer):
    phone_number_id = serializers.CharField(source="phone.phone_number_id", read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "phone_number_id",
            "wa_id",
            "contact_name",
            "list_name",
            "unread_count",
            "last_message_at",
            "last_inbound_at",
            "last_message_preview",
        ]


class InboxMessageSerializer(serializers.ModelSerializer):
    campaign_id = serializers.IntegerField(
        source="campaign_message.campaign_id",
        read_only=True,
        default=None,
        allow_null=True,
        help_text="The campaign whose message this answers or is; null for other messages",
    )

    class Meta:
        model = InboxMessage
        fields = [
            "id",
            "wamid",
            "direction",
            "type",
            "body",
            "status",
            "error_code",
            "error_title",
            "timestamp",
            "campaign_id",
        ]


class ReplySerializer(serializers.Serializer):
    text = serializers.CharField(max_length=4096, trim_whitespace=True)


@extend_schema(
    summary="List conversations",
    description="Every conversation with a customer who wrote to one of your numbers, those "
    "with unread messages first (or the most recent first with sort=recent), paginated.",
    parameters=[
        OpenApiParameter("q", description="Name or number to look for"),
        OpenApiParameter("sort", enum=["unread", "recent"], description="Default: unread"),
    ],
)
class ConversationList(generics.ListAPIView):
    serializer_class = ConversationSerializer

    def get_queryset(self):
        params = self.request.query_params
        return (
            Conversation.objects.select_related("phone")
            .search(params.get("q", ""))
            .in_inbox_order(params.get("sort", "unread"))
        )


@extend_schema(
    summary="A conversation's messages",
    description="The customer's messages and your replies, newest first; follow `next` for "
    "older ones. Outgoing messages carry their delivery status from Meta's webhooks.",
)
class ConversationMessages(generics.ListAPIView):
    serializer_class = InboxMessageSerializer
    queryset = InboxMessage.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        conversation = get_object_or_404(Conversation, pk=self.kwargs["pk"])
        return conversation.messages.select_related("campaign_message").order_by(
            "-timestamp", "-id"
        )


class ConversationReply(APIView):
    http_method_names = ["post", "options"]
    access_action = "inbox.reply"

    @extend_schema(
        summary="Reply in a conversation",
        description="Sends a text message to the customer through Meta. Answers 409 when "
        "WhatsApp's 24-hour window since the customer's last message is closed (only a template "
        "may be sent then) and 400 with the reason for any other refusal.",
        request=ReplySerializer,
        responses={201: InboxMessageSerializer},
    )
    def post(self, request, pk: int):
        conversation = get_object_or_404(
            Conversation.objects.select_related("phone__account"), pk=pk
        )
        serializer = ReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            message = conversation_reply(
                conversation=conversation, text=serializer.validated_data["text"], user=request.user
            )
        except ReplyWindowClosed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except ReplyError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(InboxMessageSerializer(message).data, status=status.HTTP_201_CREATED)


class ConversationRead(APIView):
    http_method_names = ["post", "options"]
    access_action = "inbox.reply"

    @extend_schema(
        summary="Mark a conversation read",
        description="Sets its unread count to zero; nothing is sent to the customer.",
        request=None,
        responses={204: None},
    )
    def post(self, request, pk: int):
        get_object_or_404(Conversation, pk=pk)
        Conversation.objects.filter(pk=pk).update(unread_count=0)
        return Response(status=status.HTTP_204_NO_CONTENT)
