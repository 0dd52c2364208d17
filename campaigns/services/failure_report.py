"""Why a campaign's contacts failed, in the three kinds a marketer can act on.

- never reached Meta: a missing value (the row fills no template) or the network (Meta could not
  be reached, after the retries);
- refused by Meta: the Graph API answered with an error code, read through the one catalogue;
- failed after acceptance: Meta accepted the send, then a status webhook reported it failed.

A send Meta never confirmed either way is its own group: it may have gone out, so it is never
resent blindly. Groups are per kind, code and template: two templates failing the same way are
two rows, since the fix differs.
"""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count

from campaigns.importing.export import REASON_TEXT
from campaigns.models import Contact
from templates_app.models import MessageTemplate
from titanflow.whatsapp.errors import AMBIGUOUS_INFO, TRANSPORT_INFO, Scope, classify

NOT_SENT = "not_sent"
REFUSED = "refused"
AFTER_ACCEPTANCE = "failed_after_acceptance"
UNCONFIRMED = "unconfirmed"
KIND_LABELS = {
    NOT_SENT: "Never reached Meta",
    REFUSED: "Refused by Meta",
    AFTER_ACCEPTANCE: "Failed after Meta accepted it",
    UNCONFIRMED: "Meta never confirmed",
}
MISSING_VALUE = "missing_value"
NETWORK = "network"
INVALID_PAYLOAD = "invalid_payload"

# These prefixes are written by the engine itself (slice.py, claims.py, TRANSPORT_INFO); a contact
# failed without a code carries one of them.
_MISSING_PREFIX = "No value for"
_UNCONFIRMED_PREFIX = "Meta never confirmed"
_NETWORK_PREFIX = TRANSPORT_INFO.meaning.split(" (")[0]

# The latest message is the contact's result: a failed one whose code is the contact's own
# means the webhook failed it; a refusal by the Graph API leaves no message at all.
_SQL = """
SELECT CASE
        WHEN lm.status = 'failed' AND lm.error_code IS NOT DISTINCT FROM c.last_error_code
            THEN 'failed_after_acceptance'
        WHEN c.last_error LIKE %(unconfirmed)s THEN 'unconfirmed'
        WHEN c.last_error_code IS NOT NULL THEN 'refused'
        WHEN c.last_error LIKE %(missing)s OR c.last_error LIKE %(network)s THEN 'not_sent'
        ELSE 'refused'
    END AS kind,
    c.last_error_code AS code,
    CASE WHEN lm.status = 'failed' AND lm.error_code IS NOT DISTINCT FROM c.last_error_code
        THEN lm.template_id
        WHEN c.last_error LIKE %(missing)s THEN NULL
        ELSE c.payload_template_id END AS template_id,
    count(*) AS n,
    max(NULLIF(c.last_error, '')) AS example
FROM campaigns_contact c
LEFT JOIN LATERAL (
    SELECT m.status, m.error_code, m.template_id FROM campaigns_message m
    WHERE m.contact_id = c.id ORDER BY m.id DESC LIMIT 1
) lm ON true
WHERE c.campaign_id = %(campaign)s AND c.state = 'failed'
GROUP BY 1, 2, 3
ORDER BY n DESC, kind, code NULLS FIRST, template_id NULLS FIRST
"""


@dataclass(frozen=True)
class FailureGroup:
    kind: str
    cause: str  # for not_sent: missing_value or network; else the catalogue scope
    code: int | None
    template_id: int | None
    template_name: str
    count: int
    meaning: str
    action: str
    meta_said: str

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    def as_dict(self) -> dict:
        template = {"id": self.template_id, "name": self.template_name}
        return {
            "kind": self.kind,
            "cause": self.cause,
            "code": self.code,
            "template": template if self.template_id else None,
            "count": self.count,
            "meaning": self.meaning,
            "action": self.action,
            "meta_said": self.meta_said,
        }


def campaign_failures(*, campaign_id: int) -> list[FailureGroup]:
    """The campaign's failed contacts, grouped by kind, error code and template."""
    params = {
        "campaign": campaign_id,
        "missing": f"{_MISSING_PREFIX}%",
        "network": f"{_NETWORK_PREFIX}%",
        "unconfirmed": f"{_UNCONFIRMED_PREFIX}%",
    }
    with connection.cursor() as cursor:
        cursor.execute(_SQL, params)
        rows = cursor.fetchall()
    names = _template_names({row[2] for row in rows if row[2]})
    return [_group(*row, template_name=names.get(row[2], "")) for row in rows]


def _template_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    templates = MessageTemplate.objects.filter(pk__in=ids).order_by("id")
    return {t.pk: f"{t.name} ({t.language})" for t in templates}


def _group(kind, code, template_id, n, example, *, template_name) -> FailureGroup:
    example = example or ""
    meaning, said, meta_said = example.partition(" Meta said: ")
    common = {"code": code, "template_id": template_id, "template_name": template_name, "count": n}
    if kind == NOT_SENT and example.startswith(_MISSING_PREFIX):
        return FailureGroup(
            kind,
            MISSING_VALUE,
            meaning=example,
            action="Fill the value in the list and send the failed contacts a follow-up "
            "campaign; retrying this row as it is would fail the same way.",
            meta_said="",
            **common,
        )
    if kind == NOT_SENT:
        return FailureGroup(
            kind,
            NETWORK,
            meaning=TRANSPORT_INFO.meaning,
            action="TitanFlow retried with pauses until it gave up; Retry failed sends them again.",
            meta_said="",
            **common,
        )
    if kind == UNCONFIRMED:
        return FailureGroup(
            kind,
            Scope.AMBIGUOUS.value,
            meaning=AMBIGUOUS_INFO.meaning,
            action="Not sent again, so no one receives it twice; Retry failed leaves them.",
            meta_said="",
            **common,
        )
    info = classify(code)
    cause = INVALID_PAYLOAD if info.scope == Scope.PAYLOAD else info.scope.value
    action = info.action
    if kind == AFTER_ACCEPTANCE:
        action = f"Meta accepted the message, then reported it failed. {action}"
    if not said and not example.startswith(info.meaning):
        meta_said = example
    meaning = info.meaning if code is not None else meaning
    return FailureGroup(kind, cause, meaning=meaning, action=action, meta_said=meta_said, **common)


def campaign_skips(*, campaign_id: int) -> list[tuple[str, str, int]]:
    """Contacts skipped rather than sent, by reason, with the reason in words (the import's
    reasons, the guard's US rule and its deadline)."""
    counts = (
        Contact.objects.filter(campaign_id=campaign_id, state=Contact.State.SKIPPED)
        .values_list("skip_reason")
        .annotate(n=Count("id"))
        .order_by("-n", "skip_reason")
    )
    return [(reason, REASON_TEXT.get(reason, reason), n) for reason, n in counts]
