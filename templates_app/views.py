"""Pages for Meta assets: accounts, phone numbers, templates, and "Sync now" with live progress."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from templates_app.forms import AccountForm, PhoneRateForm, TemplateFilterForm
from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount
from templates_app.services.jobs import account_sync_enqueue
from templates_app.services.progress import SyncProgress, is_active
from templates_app.services.sync import AccountVerificationError, account_create
from titanflow.access import requires
from titanflow.audit import audit_record
from titanflow.whatsapp.payloads import Slot, example_values, highlight_preview

TEMPLATES_PER_PAGE = 25


def _count_of(model, **filters):
    per_account = (
        model.objects.filter(account=OuterRef("pk"), **filters)
        .order_by()
        .values("account")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(per_account, output_field=IntegerField()), 0)


# -- accounts ----------------------------------------------------------------------------------


@require_GET
def account_list(request):
    accounts = list(
        WhatsAppAccount.objects.annotate(
            phones_count=_count_of(PhoneNumber),
            templates_count=_count_of(MessageTemplate, deleted_at_meta=False),
        ).order_by("name", "id")
    )
    context = {"accounts": accounts, "form": AccountForm(), **_sync_context(accounts)}
    return render(request, "templates_app/account_list.html", context)


@require_http_methods(["GET", "POST"])
@requires("account.manage")
def account_new(request):
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account = account_create(**form.cleaned_data)
        except AccountVerificationError as exc:
            form.add_error(None, str(exc))
        else:
            audit_record(
                user=request.user,
                action="account.create",
                obj=account,
                changes=form.cleaned_data,
                via="page",
            )
            return _account_added(request, account)
    template = "templates_app/account_new.html"
    if request.htmx:
        template += "#account-form"
    return render(request, template, {"form": form})


def _account_added(request, account: WhatsAppAccount):
    account_sync_enqueue(account=account)
    messages.success(request, f"Added {account.name}. Its numbers and templates are syncing.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("account-list"))
    return redirect("account-list")


@require_POST
@requires("assets.sync")
def account_sync(request, pk: int):
    account = get_object_or_404(WhatsAppAccount, pk=pk)
    account_sync_enqueue(account=account)
    audit_record(user=request.user, action="account.sync", obj=account, via="page")
    if request.htmx:
        return _sync_status(request, list(WhatsAppAccount.objects.order_by("name", "id")))
    messages.info(request, f"Sync of {account.name} started.")
    return redirect("account-list")


@require_POST
@requires("assets.sync")
def accounts_sync(request):
    accounts = list(WhatsAppAccount.objects.order_by("name", "id"))
    for account in accounts:
        account_sync_enqueue(account=account)
        audit_record(user=request.user, action="account.sync", obj=account, via="page")
    if request.htmx:
        return _sync_status(request, accounts)
    messages.info(request, "Sync of every account started.")
    return redirect("template-list")


@require_GET
def sync_status(request):
    """The progress fragment that polls itself while a sync runs and stops when all are done."""
    ids = [int(pk) for pk in request.GET.getlist("account") if pk.isdigit()]
    accounts = WhatsAppAccount.objects.order_by("name", "id")
    accounts = list(accounts.filter(pk__in=ids) if ids else accounts)
    context = _sync_context(accounts)
    response = render(request, "templates_app/_sync_status.html", context)
    if request.GET.get("was") == "active" and not context["sync_active"]:
        # The lists on the page listen for this and reload themselves with the synced data.
        trigger_client_event(response, "assets-synced")
    return response


def _sync_context(accounts: list[WhatsAppAccount]) -> dict:
    latest = SyncProgress.latest_many(account_ids=[account.pk for account in accounts])
    syncs = [(account, latest.get(account.pk)) for account in accounts]
    return {
        "syncs": syncs,
        "sync_active": any(is_active(state) for _, state in syncs),
        "sync_accounts": [account.pk for account in accounts],
    }


def _sync_status(request, accounts: list[WhatsAppAccount]):
    return render(request, "templates_app/_sync_status.html", _sync_context(accounts))


# -- phone numbers -----------------------------------------------------------------------------


@require_GET
def phone_list(request):
    phones = PhoneNumber.objects.select_related("account").order_by(
        "account__name", "display_phone_number", "id"
    )
    return render(request, "templates_app/phone_list.html", {"phones": phones})


@require_POST
@requires("phone.rate")
def phone_rate(request, pk: int):
    phone = get_object_or_404(PhoneNumber.objects.select_related("account"), pk=pk)
    form = PhoneRateForm(request.POST, phone=phone)
    if form.is_valid():
        before = phone.max_mps
        phone.set_max_mps(form.cleaned_data["max_mps"])
        changes = {"max_mps": [before, phone.max_mps]}
        audit_record(user=request.user, action="phone.rate", obj=phone, changes=changes, via="page")
        form = None
    if request.htmx:
        return render(
            request, "templates_app/phone_list.html#phone-row", {"phone": phone, "form": form}
        )
    if form is None:
        messages.success(request, f"{phone} now sends at most {phone.max_mps} messages/s.")
    else:
        messages.error(request, f"{phone}: {' '.join(form.errors['max_mps'])}")
    return redirect("phone-list")


# -- templates ---------------------------------------------------------------------------------


@require_GET
def template_list(request):
    filters = TemplateFilterForm(request.GET or None)
    templates = filters.filter(
        MessageTemplate.objects.select_related("account").order_by("name", "language", "id")
    )
    page = Paginator(templates, TEMPLATES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(template, _preview(template)) for template in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    accounts = list(filters.fields["account"].queryset)
    context = {
        "filters": filters,
        "page": page,
        "rows": rows,
        "query": query.urlencode(),
        **_sync_context(accounts),
    }
    template = "templates_app/template_list.html"
    if request.htmx and request.htmx.target == "template-results":
        template += "#template-results"
    return render(request, template, context)


def _preview(template: MessageTemplate) -> list[dict]:
    slots = [Slot.from_dict(raw) for raw in template.slots]
    return highlight_preview(template.components, example_values(slots))
