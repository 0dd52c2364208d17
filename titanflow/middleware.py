"""Request guards that no single view can own."""

from django.http import HttpResponseBadRequest

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
