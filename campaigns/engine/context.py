"""What one slice knows about its campaign, sender, number and templates.

Loaded at the start of a slice and again whenever the engine generation moves (a pause, an
exhausted number, a template event), so every send uses the sender's current template as the
database has it now: late binding.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime

from campaigns.clicks.links import LinkMinter
from campaigns.engine import guard
from campaigns.models import Campaign, CampaignSender, SenderTemplate
from templates_app.models import PhoneNumber
from titanflow.whatsapp.payloads import (
    Slot,
    build_template_payload,
    encode_payload,
    parse_slots,
    resolve_values,
)


@dataclass
class TemplateChoice:
    id: int
    name: str
    language: str
    components: list
    parameter_format: str
    slots: list[Slot]
    sendable: bool
    failed: bool = False
    # An A/B arm's fixed values: {"<slot key>": {"text": "..."}}, over the campaign's mapping.
    fixed: dict = field(default_factory=dict)

    def body_for(
        self, *, contact_id: int, phone: str, variables: dict, mapping: dict, links=None
    ) -> bytes:
        """The exact bytes to send; `biz_opaque_callback_data` lets webhooks find the contact
        before the wamid is known (an ambiguous send). With `links`, tracked links are minted
        first and go into these bytes, so a retry resends the same links."""
        rules = {**(mapping.get(str(self.id)) or {}), **self.fixed}
        values = resolve_values(self.slots, rules, variables or {})
        if links is not None:
            values = links.rewrite(contact_id=contact_id, template=self, values=values)
        payload = build_template_payload(
            name=self.name,
            language=self.language,
            components=self.components,
            parameter_format=self.parameter_format,
            values=values,
            to=phone,
            callback_data=f"c:{contact_id}",
            slots=self.slots,
        )
        return encode_payload(payload)


@dataclass
class SenderContext:
    campaign_id: int
    sender_id: int
    status: str = ""
    sender_state: str = ""
    mapping: dict = field(default_factory=dict)
    phone_id: int = 0
    phone_number_id: str = ""
    display_phone: str = ""
    account_id: int = 0
    access_token: str = ""
    rate: float = 1.0
    campaign_rate: float = 0.0
    templates: list[TemplateChoice] = field(default_factory=list)
    current_template_id: int | None = None
    # The deliverability guard's inputs (campaigns/engine/guard.py).
    quality_stop: str = ""
    held: bool = False
    deadline: datetime | None = None
    quiet: guard.QuietHours | None = None
    portfolio_limit: int | None = None
    portfolio_phone_ids: list[int] = field(default_factory=list)
    links: LinkMinter | None = None
    # A/B: arm id -> (template name, language, fixed values); the winner once chosen.
    ab_test_id: int | None = None
    arms: dict[int, tuple] = field(default_factory=dict)
    ab_winner_id: int | None = None

    def load(self) -> "SenderContext":
        sender = CampaignSender.objects.select_related("campaign__ab_test", "phone__account").get(
            pk=self.sender_id
        )
        campaign, phone = sender.campaign, sender.phone
        self.status, self.sender_state = campaign.status, sender.state
        self.mapping = campaign.variable_mapping or {}
        self.phone_id, self.phone_number_id = phone.pk, phone.phone_number_id
        self.display_phone = str(phone)
        self.account_id, self.access_token = phone.account_id, phone.account.access_token
        rate = min(sender.mps or phone.max_mps, phone.max_mps)
        self.rate = guard.quality_rate(rate=rate, quality=phone.quality_rating)
        self.campaign_rate = campaign.max_mps or 0
        self._guard_load(campaign, sender, phone)
        self.templates = _templates(self.sender_id)
        self.links = LinkMinter(
            campaign_id=campaign.pk, phone_id=phone.pk, track_body=campaign.track_clicks
        )
        self.current_template_id = sender.current_template_id
        self.sync_current()
        self._ab_load(campaign)
        return self

    def _ab_load(self, campaign: Campaign) -> None:
        test = getattr(campaign, "ab_test", None)
        if test is None:
            return
        self.ab_test_id, self.ab_winner_id = test.pk, test.winner_id
        if not self.arms:
            self.arms = {
                arm.pk: (arm.template.name, arm.template.language, arm.values or {})
                for arm in test.arms.select_related("template").order_by("position")
            }

    def arm_choice(self, arm_id: int | None) -> TemplateChoice | None:
        """The template (this sender's copy, by name and language) and fixed values of the
        contact's arm, or of the winner for a contact outside the test share; None when this
        sender cannot use it now (the engine falls back to the sender's own order)."""
        if self.ab_test_id is None:
            return None
        if arm_id is None:
            arm_id = self.ab_winner_id or self._winner_reload()
        if arm_id not in self.arms:
            return None
        name, language, values = self.arms[arm_id]
        for choice in self.usable():
            if (choice.name, choice.language) == (name, language):
                fixed = {key: {"text": str(text)} for key, text in values.items()}
                return replace(choice, fixed=fixed) if fixed else choice
        return None

    def _winner_reload(self) -> int | None:
        # Claimed a held contact: the winner was chosen after this slice loaded its context.
        from campaigns.ab.models import AbTest

        self.ab_winner_id = (
            AbTest.objects.filter(pk=self.ab_test_id).values_list("winner_id", flat=True).first()
        )
        return self.ab_winner_id

    def _guard_load(self, campaign: Campaign, sender: CampaignSender, phone) -> None:
        self.quality_stop = guard.quality_stop_reason(
            quality=phone.quality_rating, status=phone.status
        )
        self.held = bool(sender.hold_reason or campaign.hold_reason)
        self.deadline = campaign.deadline
        self.quiet = None
        if campaign.has_quiet_hours:
            self.quiet = guard.QuietHours(
                start=campaign.quiet_start, end=campaign.quiet_end, zone=campaign.quiet_zone
            )
        self.portfolio_limit = phone.account.messaging_limit
        if self.portfolio_limit is not None and not self.portfolio_phone_ids:
            self.portfolio_phone_ids = list(
                PhoneNumber.objects.filter(account_id=phone.account_id)
                .order_by("id")
                .values_list("id", flat=True)
            )

    def sync_current(self) -> None:
        """Records the template this sender now uses when a template event moved it on."""
        current = self.current()
        if current is not None and current.id != self.current_template_id:
            CampaignSender.objects.filter(pk=self.sender_id).update(current_template_id=current.id)
            self.current_template_id = current.id

    @property
    def sending(self) -> bool:
        return (
            self.status == Campaign.Status.RUNNING
            and self.sender_state == CampaignSender.State.ACTIVE
        )

    def current(self) -> TemplateChoice | None:
        """The first template in the marketer's order that is still usable by this sender."""
        return next(iter(self.usable()), None)

    def usable(self) -> list[TemplateChoice]:
        """The templates this sender may still use, in the marketer's order."""
        return [t for t in self.templates if t.sendable and not t.failed]

    def template_failed(self, template_id: int) -> None:
        for template in self.templates:
            if template.id == template_id:
                template.failed = True


def _templates(sender_id: int) -> list[TemplateChoice]:
    slots = (
        SenderTemplate.objects.filter(sender_id=sender_id)
        .select_related("template")
        .order_by("position", "id")
    )
    return [_choice(slot) for slot in slots]


def _choice(slot: SenderTemplate) -> TemplateChoice:
    template = slot.template
    parsed = [Slot.from_dict(item) for item in template.slots or []] or _parse(template)
    return TemplateChoice(
        id=template.pk,
        name=template.name,
        language=template.language,
        components=template.components,
        parameter_format=template.parameter_format,
        slots=parsed,
        sendable=template.is_sendable,
        failed=slot.failed_code is not None,
    )


def _parse(template) -> list[Slot]:
    try:
        return parse_slots(template.components, template.parameter_format)
    except ValueError:
        return []
