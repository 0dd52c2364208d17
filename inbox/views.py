"""The inbox: conversations with customers, their messages and the reply box."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from inbox.models import Conversation
from inbox.services.replies import ReplyError, conversation_reply
from titanflow.access import can, requires

CONVERSATIONS_PER_PAGE = 25
MESSAGES_PER_PAGE = 50


@require_GET
def inbox(request):
    query = request.GET.get("q", "").replace("\x00", "").strip()[:200]
    sort = "recent" if request.GET.get("sort") == "recent" else "unread"
    conversations = Conversation.objects.select_related("phone").search(query).in_inbox_order(sort)
    page = Paginator(conversations, CONVERSATIONS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "sort": sort}
    if request.htmx and request.htmx.target == "conversation-list":
        return render(request, "inbox/list.html#conversations", context)
    context["unread"] = Conversation.objects.filter(unread_count__gt=0).aggregate(
        conversations=Count("id"), messages=Sum("unread_count")
    )
    return render(request, "inbox/list.html", context)


@require_GET
def conversation_detail(request, pk: int):
    conversation = get_object_or_404(Conversation.objects.select_related("phone"), pk=pk)
    # Looking at the thread is reading it; the filter keeps polls from rewriting the row.
    # A viewer looking does not answer anyone, so the thread stays unread for those who will.
    if can(request.user, "inbox.reply"):
        Conversation.objects.filter(pk=pk, unread_count__gt=0).update(unread_count=0)
    context = _thread_context(request, conversation)
    if request.htmx and request.htmx.target == "thread":
        return render(request, "inbox/conversation.html#thread", context)
    return render(request, "inbox/conversation.html", context)


@require_POST
@requires("inbox.reply")
def conversation_reply_view(request, pk: int):
    conversation = get_object_or_404(Conversation.objects.select_related("phone__account"), pk=pk)
    text = request.POST.get("text", "")
    error = ""
    try:
        conversation_reply(conversation=conversation, text=text, user=request.user)
    except ReplyError as exc:
        error = str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("conversation-detail", pk=pk)
    conversation.refresh_from_db()
    context = {**_thread_context(request, conversation), "error": error}
    context["draft"] = text if error else ""
    return render(request, "inbox/conversation.html#conversation", context)


@require_POST
@requires("inbox.reply")
def conversation_mark_read(request, pk: int):
    Conversation.objects.filter(pk=pk).update(unread_count=0)
    back = request.POST.get("next", "")
    # Only a path: redirect() would take any other word for a URL name and fail on it (a 500).
    if back.startswith("/") and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}
    ):
        return redirect(back)
    return redirect("inbox")


def _thread_context(request, conversation: Conversation) -> dict:
    thread = conversation.messages.select_related(
        "campaign_message__campaign", "campaign_message__template"
    ).order_by("-timestamp", "-id")
    page = Paginator(thread, MESSAGES_PER_PAGE).get_page(request.GET.get("page"))
    messages_shown = list(reversed(page.object_list))
    for message in messages_shown:
        answered = message.campaign_message
        message.quote = answered.sent_preview() if answered else []
    return {"conversation": conversation, "page": page, "thread": messages_shown}
