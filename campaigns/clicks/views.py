from django.http import Http404, HttpResponseRedirect
from django.views.decorators.http import require_GET

from campaigns.clicks.links import click_record


@require_GET
def follow(request, token: str):
    """The public short link: counts the click and sends the person on to the one URL stored
    for this token. Anything else is a 404 that records nothing."""
    url = click_record(token=token)
    if url is None:
        raise Http404("No such link.")
    response = HttpResponseRedirect(url)
    response["Referrer-Policy"] = "no-referrer"  # the token stays with us
    response["Cache-Control"] = "no-store"  # every click reaches us to be counted
    response["X-Robots-Tag"] = "noindex"
    return response
