"""Rows that no chosen template can be filled for are skipped as `missing_variable`.

The rule: a contact is skipped when, for EVERY template its campaign's senders may use, at least
one column that template's mapping reads is blank in the contact's row. A contact that fits at
least one template stays pending (the review page counts, per template, the rows it cannot fill).
Fixed-text slots and columns with a default never miss. Set-based: one UPDATE marks, one
UPDATE releases after a remap."""

from django.db import connection

from campaigns.counters import campaign_recount
from campaigns.models import Campaign, SenderTemplate

SKIP_REASONS = (
    "invalid_phone",
    "duplicate_in_file",
    "opted_out",
    "recently_messaged",
    "missing_variable",
)
_BLANK = "coalesce(btrim(variables ->> %s), '') = ''"


def template_columns(*, campaign: Campaign) -> dict[int, list[str]]:
    """Columns each of the campaign's chosen templates reads, by template id."""
    template_ids = (
        SenderTemplate.objects.filter(sender__campaign=campaign)
        .order_by("template_id")
        .values_list("template_id", flat=True)
        .distinct()
    )
    mapping = campaign.variable_mapping or {}
    return {
        template_id: sorted(
            {
                source["column"]
                for source in mapping.get(str(template_id), {}).values()
                if isinstance(source, dict)
                and source.get("column")
                and not str(source.get("default") or "").strip()
            }
        )
        for template_id in template_ids
    }


def _unfillable_condition(columns_by_template: dict[int, list[str]]) -> tuple[str, list[str]]:
    groups = list(columns_by_template.values())
    if not groups or any(not columns for columns in groups):
        return "FALSE", []
    clauses, params = [], []
    for columns in groups:
        clauses.append("(" + " OR ".join([_BLANK] * len(columns)) + ")")
        params.extend(columns)
    return " AND ".join(clauses), params


def contacts_mark_missing_variables(*, campaign: Campaign) -> None:
    """Applies the rule above to the campaign's pending and missing-variable contacts."""
    condition, params = _unfillable_condition(template_columns(campaign=campaign))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_contact SET state = 'skipped', skip_reason = 'missing_variable'"
            f" WHERE campaign_id = %s AND state = 'pending' AND {condition}",
            [campaign.pk, *params],
        )
        cursor.execute(
            "UPDATE campaigns_contact SET state = 'pending', skip_reason = ''"
            " WHERE campaign_id = %s AND state = 'skipped' AND skip_reason = 'missing_variable'"
            f" AND NOT ({condition})",
            [campaign.pk, *params],
        )


def missing_counts(*, campaign: Campaign) -> dict[int, int]:
    """Per chosen template, how many sendable contacts it cannot fill (shown in review)."""
    counts = {}
    for template_id, columns in template_columns(campaign=campaign).items():
        if not columns:
            counts[template_id] = 0
            continue
        condition = " OR ".join([_BLANK] * len(columns))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM campaigns_contact"
                f" WHERE campaign_id = %s AND state = 'pending' AND ({condition})",
                [campaign.pk, *columns],
            )
            counts[template_id] = cursor.fetchone()[0]
    return counts


def skip_counts(*, campaign: Campaign) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT skip_reason, count(*) FROM campaigns_contact"
            " WHERE campaign_id = %s AND state = 'skipped' GROUP BY skip_reason",
            [campaign.pk],
        )
        return dict(cursor.fetchall())


def campaign_refresh_skips(*, campaign: Campaign) -> None:
    """Brings skipped_count and the report's per-reason counts in line with the contacts."""
    counts = skip_counts(campaign=campaign)
    truth = campaign_recount(campaign_id=campaign.pk)
    campaign.skipped_count, campaign.total_count = truth["skipped"], truth["total"]
    report = dict(campaign.import_report or {})
    if report:
        report["skipped"] = {reason: counts.get(reason, 0) for reason in SKIP_REASONS}
        report["valid"] = report.get("rows", campaign.total_count) - campaign.skipped_count
    campaign.import_report = report
    campaign.save(update_fields=["import_report", "updated_at"])
