"""Meta's door: the subscription challenge and signed event deliveries."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from webhooks.door import MAX_BODY_BYTES, TOO_LARGE, challenge_answer, delivery_accept

SIGNATURE_HEADER = "HTTP_X_HUB_SIGNATURE_256"


# Exempt from CSRF because Meta cannot send a token: the HMAC signature is the authentication.
# The GET shares the view; Django never CSRF-checks a GET anyway.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request):
    if request.method == "GET":
        return _challenge(request)
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
        return _answer(*TOO_LARGE)
    try:
        body = request.body
    except RequestDataTooBig:
        return _answer(*TOO_LARGE)
    return _answer(*delivery_accept(body=body, signature=request.META.get(SIGNATURE_HEADER)))


def _challenge(request):
    return _answer(*challenge_answer(request.GET))


def _answer(status: int, reason: str) -> HttpResponse:
    return HttpResponse(reason, status=status, content_type="text/plain")
