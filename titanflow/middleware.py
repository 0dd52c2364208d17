"""Request guards and logging that no single view can own."""

import logging
import time

from django.http import HttpResponseBadRequest

request_logger = logging.getLogger("titanflow.requests")

_ADMIN = "/admin/"


class AdminNulQueryMiddleware:
    """The admin's list filters pass query values straight to PostgreSQL, which refuses a NUL
    in text (a 500); no real filter value holds one, so such a request is refused up front."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(_ADMIN) and any(
            "\x00" in key or "\x00" in value for key, value in request.GET.items()
        ):
            return HttpResponseBadRequest("A query parameter contains a NUL character.")
        return self.get_response(request)


class RequestLogMiddleware:
    """One line per request Django serves (pages, the API, the admin, tracked links): method,
    path, status and time. The web server's own access log is off: Meta's deliveries, three
    per message sent, skip Django (webhooks/wsgi.py) and are recorded as WebhookEvent rows,
    and a line each cost the door a fifth of its CPU."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        request_logger.info(
            "%s %s %s %.1f ms",
            request.method,
            request.get_full_path(),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response
