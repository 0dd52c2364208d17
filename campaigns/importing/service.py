"""Starting an import: keep the upload, read its header, and queue the import task."""

from django.db import transaction

from campaigns.importing.columns import guess_name_column, guess_phone_column, read_head
from campaigns.importing.readers import ImportFileError
from campaigns.models import Campaign

_LOCKED = "This campaign has been launched; its contact list can no longer change."


def import_start(
    *,
    campaign: Campaign,
    uploaded_file,
    phone_column: str = "",
    name_column: str = "",
    queue: bool = True,
) -> Campaign:
    """Stores `uploaded_file` as the campaign's list and queues its import.

    Columns not given are guessed from the header and the first rows. A file that cannot be read,
    or has no phone column, leaves the campaign failed with the reason (and raises it).
    `queue=False` leaves running `import_run` to the caller (the management command)."""
    if not campaign.is_editable and campaign.status != Campaign.Status.IMPORTING:
        raise ImportFileError(_LOCKED)
    _replace_file(campaign, uploaded_file)
    try:
        header, sample = read_head(campaign.source_file.path, campaign.source_name)
    except ImportFileError as exc:
        _fail(campaign, str(exc))
        raise
    campaign.columns = header
    campaign.phone_column = phone_column or guess_phone_column(header, sample)
    campaign.name_column = name_column or guess_name_column(header, campaign.phone_column)
    campaign.import_report = {}
    campaign.save(update_fields=["columns", "phone_column", "name_column", "import_report"])
    return import_enqueue(
        campaign=campaign,
        phone_column=campaign.phone_column,
        name_column=campaign.name_column,
        queue=queue,
    )


def import_enqueue(
    *, campaign: Campaign, phone_column: str, name_column: str = "", queue: bool = True
) -> Campaign:
    """(Re)imports the stored file with the given columns; also the retry after a failure."""
    if not campaign.is_editable and campaign.status != Campaign.Status.IMPORTING:
        raise ImportFileError(_LOCKED)
    if not campaign.source_file:
        raise ImportFileError("Upload a contact list first.")
    if phone_column not in campaign.columns:
        _fail(campaign, "No phone column: pick the column that holds the phone numbers.")
        raise ImportFileError(campaign.import_error)
    if name_column and name_column not in campaign.columns:
        raise ImportFileError(f"The file has no column “{name_column}”.")
    campaign.phone_column, campaign.name_column = phone_column, name_column
    campaign.status = Campaign.Status.IMPORTING
    campaign.import_error = ""
    campaign.import_rows_done = campaign.import_rows_estimate = 0
    campaign.save(update_fields=_ENQUEUE_FIELDS)
    if queue:
        from campaigns.importing.tasks import import_contacts

        import_contacts.delay_on_commit(campaign_id=campaign.pk)
    return campaign


_ENQUEUE_FIELDS = [
    "phone_column",
    "name_column",
    "status",
    "import_error",
    "import_rows_done",
    "import_rows_estimate",
    "updated_at",
]


def _replace_file(campaign: Campaign, uploaded_file) -> None:
    old = campaign.source_file.name
    with transaction.atomic():
        campaign.source_name = getattr(uploaded_file, "name", "") or "contacts.csv"
        campaign.source_file.save(campaign.source_name, uploaded_file, save=False)
        campaign.save(update_fields=["source_file", "source_name", "updated_at"])
    if old and old != campaign.source_file.name:
        campaign.source_file.storage.delete(old)


def _fail(campaign: Campaign, reason: str) -> None:
    campaign.status = Campaign.Status.FAILED
    campaign.import_error = reason
    campaign.save(update_fields=["status", "import_error", "updated_at"])
