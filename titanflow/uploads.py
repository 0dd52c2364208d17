"""An upload handler that keeps at most IMPORT_MAX_BYTES of any uploaded file on disk."""

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler


class BoundedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Drops the bytes past the limit while the body streams in. The file keeps its full
    `size` (Django counts every byte received), so a form refuses it by that size."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.IMPORT_MAX_BYTES:
            return None
        return super().receive_data_chunk(raw_data, start)
