"""Contact import: readers for every supported file, phone normalisation, the COPY loader."""

from campaigns.importing.readers import ImportFileError, UploadRefused
from campaigns.importing.service import import_enqueue, import_stage, import_start

__all__ = ["ImportFileError", "UploadRefused", "import_enqueue", "import_stage", "import_start"]
