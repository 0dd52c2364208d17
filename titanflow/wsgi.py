import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "titanflow.settings")
application = get_wsgi_application()

# Meta's signed POSTs skip Django's middleware stack (half the CPU per delivery); the apps must
# be loaded first, hence the late import.
from webhooks.wsgi import webhook_fast_path  # noqa: E402

application = webhook_fast_path(application)
