"""Starting an import: check the upload, keep it, read its header, and queue the import task;
and the stored lists' lifetime (deleted after a failed import, with their campaign, and
after the retention period)."""

import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from campaigns.importing import limits as refusal
from campaigns.importing.columns import guess_name_column, guess_phone_column, read_head
from campaigns.importing.load import import_run
from campaigns.importing.phones import is_region
from campaigns.importing.readers import ImportFileError, UploadRefused
from campaigns.models import Campaign

_LOCKED = "This campaign has been launched; its contact list can no longer change."
UPLOAD_DIR = "imports"
# A file saved by a request whose transaction has not committed yet has no campaign row
# pointing at it; orphans younger than this are left alone.
_ORPHAN_GRACE = timedelta(hours=1)


def import_start(
    *,
    campaign: Campaign,
    uploaded_file,
    phone_column: str = "",
    name_column: str = "",
    phone_region: str = "",
    queue: bool = True,
) -> Campaign:
    """Stores `uploaded_file` as the campaign's list and queues its import.

    The whole file is checked against the upload limits first: a file past one, damaged or
    not a list raises UploadRefused and changes nothing. Columns not given are guessed from the
    header and the first rows; a list without a phone column is kept, and the campaign failed
    with the reason, so that the marketer can pick one. `queue=False` leaves running the
    import to the caller (the management command)."""
    _checked_region(phone_region)  # before the file is stored
    import_stage(campaign=campaign, uploaded_file=uploaded_file)
    return import_enqueue(
        campaign=campaign,
        phone_column=phone_column or campaign.phone_column,
        name_column=name_column or campaign.name_column,
        phone_region=phone_region,
        queue=queue,
    )


def import_stage(*, campaign: Campaign, uploaded_file, head: tuple | None = None) -> Campaign:
    """Checks and stores `uploaded_file` as the campaign's list with its columns guessed, and
    imports nothing yet: the wizard shows the guess and imports once the marketer confirms it.
    Raises UploadRefused (nothing changed) for a file past a limit, damaged or not a list.
    `head` is what `upload_inspect` already returned for this upload (it reads the whole file)."""
    _require_changeable(campaign)
    header, sample = head or upload_inspect(uploaded_file=uploaded_file)
    _replace_file(campaign, uploaded_file)
    campaign.columns = header
    campaign.phone_column = guess_phone_column(header, sample, campaign.region)
    campaign.name_column = guess_name_column(header, campaign.phone_column)
    campaign.import_report = {}
    campaign.import_error = ""
    # Contacts of a previous list stay until the new one is imported; only a ready campaign
    # can launch, so none of them can be sent meanwhile.
    campaign.status = Campaign.Status.DRAFT
    campaign.save(update_fields=_STAGE_FIELDS)
    return campaign


_STAGE_FIELDS = [
    "columns",
    "phone_column",
    "name_column",
    "import_report",
    "import_error",
    "status",
    "updated_at",
]


def upload_inspect(*, uploaded_file) -> tuple[list[str], list[list[str]]]:
    """The header and first rows of an upload not stored yet, after one streaming pass over all
    of it within the limits; raises UploadRefused with the sentence to show."""
    if (uploaded_file.size or 0) > settings.IMPORT_MAX_BYTES:
        raise UploadRefused(refusal.too_large(settings.IMPORT_MAX_BYTES))
    try:
        with _local_path(uploaded_file) as path:
            return read_head(path, _upload_name(uploaded_file))
    except UploadRefused:
        raise
    except ImportFileError as exc:
        raise UploadRefused(str(exc)) from exc


@contextmanager
def _local_path(uploaded_file):
    """A path to the upload's bytes: its temporary file, or a copy of a small in-memory one."""
    if hasattr(uploaded_file, "temporary_file_path"):
        yield Path(uploaded_file.temporary_file_path())
        return
    # openpyxl opens a workbook only by its extension.
    suffix = Path(_upload_name(uploaded_file)).suffix
    with tempfile.NamedTemporaryFile(prefix="titanflow-upload-", suffix=suffix) as copy:
        for chunk in uploaded_file.chunks():
            copy.write(chunk)
        copy.flush()
        yield Path(copy.name)


def _upload_name(uploaded_file) -> str:
    return Path(getattr(uploaded_file, "name", "") or "contacts.csv").name


def import_enqueue(
    *,
    campaign: Campaign,
    phone_column: str,
    name_column: str = "",
    phone_region: str = "",
    queue: bool = True,
) -> Campaign:
    """(Re)imports the stored file with the given columns (and the region national numbers are
    read in, when given); also the retry after a failure."""
    _require_changeable(campaign)
    if not campaign.source_file:
        raise ImportFileError("Upload a contact list first.")
    phone_region = _checked_region(phone_region)
    if phone_column not in campaign.columns:
        _fail(campaign, "No phone column: pick the column that holds the phone numbers.")
        raise ImportFileError(campaign.import_error)
    if name_column and name_column not in campaign.columns:
        raise ImportFileError(f"The file has no column “{name_column}”.")
    campaign.phone_column, campaign.name_column = phone_column, name_column
    campaign.phone_region = phone_region or campaign.phone_region
    campaign.status = Campaign.Status.IMPORTING
    campaign.import_error = ""
    campaign.import_rows_done = campaign.import_rows_estimate = 0
    campaign.save(update_fields=_ENQUEUE_FIELDS)
    if queue:
        from campaigns.importing.tasks import import_contacts

        import_contacts.delay_on_commit(campaign_id=campaign.pk)
    return campaign


def _checked_region(phone_region: str) -> str:
    phone_region = (phone_region or "").strip().upper()
    if phone_region and not is_region(phone_region):
        raise ImportFileError(f"“{phone_region[:8]}” is not a region code such as AE or GB.")
    return phone_region


_ENQUEUE_FIELDS = [
    "phone_column",
    "name_column",
    "phone_region",
    "status",
    "import_error",
    "import_rows_done",
    "import_rows_estimate",
    "updated_at",
]


def import_process(
    *, campaign_id: int, on_progress: Callable[[int, int], None] | None = None
) -> None:
    """Runs the queued import. When it fails (the reason is on the campaign), the stored file
    goes too: a file that broke a limit or the reader halfway is no use to keep, and a
    210 MB refusal must not stay on disk. The marketer uploads the list again."""
    # Only a file this run was importing: a campaign failed earlier (no phone column yet)
    # keeps its list so that the marketer can pick the column.
    started = (
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.IMPORTING)
        .values_list("source_file", flat=True)
        .first()
    )
    import_run(campaign_id=campaign_id, on_progress=on_progress)
    failed = Campaign.objects.filter(
        pk=campaign_id, status=Campaign.Status.FAILED, source_file=started
    ).first()
    if started and failed is not None:
        _discard_file(failed)


def _require_changeable(campaign: Campaign) -> None:
    if not campaign.is_editable and campaign.status != Campaign.Status.IMPORTING:
        raise ImportFileError(_LOCKED)


def _replace_file(campaign: Campaign, uploaded_file) -> None:
    old = campaign.source_file.name
    with transaction.atomic():
        campaign.source_name = _upload_name(uploaded_file)
        campaign.source_file.save(campaign.source_name, uploaded_file, save=False)
        campaign.save(update_fields=["source_file", "source_name", "updated_at"])
    if old and old != campaign.source_file.name:
        campaign.source_file.storage.delete(old)


def _discard_file(campaign: Campaign) -> None:
    name = campaign.source_file.name
    # Conditional: a new upload since the failure keeps its own file.
    if Campaign.objects.filter(pk=campaign.pk, source_file=name).update(source_file=""):
        campaign.source_file.storage.delete(name)


def _fail(campaign: Campaign, reason: str) -> None:
    campaign.status = Campaign.Status.FAILED
    campaign.import_error = reason
    campaign.save(update_fields=["status", "import_error", "updated_at"])


@receiver(post_delete, sender=Campaign, dispatch_uid="campaign-stored-file")
def _delete_stored_file(sender, instance: Campaign, **kwargs) -> None:
    """Every way a campaign is deleted (the page, the API, the admin and its bulk action)
    deletes its list, once the deletion has committed."""
    name, storage = instance.source_file.name, instance.source_file.storage
    if name:
        transaction.on_commit(lambda: storage.delete(name))


def import_files_prune(*, now=None) -> int:
    """Deletes the lists of settled campaigns uploaded more than IMPORT_FILE_RETENTION_DAYS ago
    (their contacts stay) and files under the upload folder no campaign points at. Returns the
    number of files deleted."""
    now = now or timezone.now()
    deleted = _prune_expired(now) if settings.IMPORT_FILE_RETENTION_DAYS else 0
    return deleted + _prune_orphans(now)


def _prune_expired(now) -> int:
    cutoff = now - timedelta(days=settings.IMPORT_FILE_RETENTION_DAYS)
    deleted = 0
    settled = (
        Campaign.objects.exclude(source_file="")
        .exclude(status=Campaign.Status.IMPORTING)
        .order_by("id")
    )
    for campaign in settled.iterator():
        storage, name = campaign.source_file.storage, campaign.source_file.name
        if storage.exists(name) and storage.get_modified_time(name) >= cutoff:
            continue
        _discard_file(campaign)
        deleted += 1
    return deleted


def _prune_orphans(now) -> int:
    storage = Campaign._meta.get_field("source_file").storage
    known = set(Campaign.objects.exclude(source_file="").values_list("source_file", flat=True))
    deleted = 0
    for name in _stored_files(storage, UPLOAD_DIR):
        if name in known or storage.get_modified_time(name) >= now - _ORPHAN_GRACE:
            continue
        storage.delete(name)
        deleted += 1
    return deleted


def _stored_files(storage, folder: str):
    if not storage.exists(folder):
        return
    folders, files = storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}"
    for sub in folders:
        yield from _stored_files(storage, f"{folder}/{sub}")
