"""A thin, pooled Graph API client: one HTTP call per method, no retries, no redirects.

Retry policy belongs to the callers, who decide from `MetaAPIError.info` (see errors.py). The
engine's sends go through mux.py instead, many in flight from one thread; `send_outcome` judges
their answers by the same rules as `send_message`.
"""

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, LocationValueError, SSLError

from .errors import AmbiguousSendError, MetaAPIError, TransportError
from .mux import ConnectFailed, Done

USER_AGENT = "TitanFlow/1.0"


@dataclass(frozen=True)
class SendResult:
    wamid: str
    message_status: str
    wa_id: str
    http_status: int


_GRAPH_PATH = re.compile(r"[A-Za-z0-9_]+(?:/[A-Za-z0-9_]+)*")


class GraphClient:
    """Calls the Graph API for one access token; safe to share between threads."""

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        access_token: str,
        connect_timeout: float = 3.0,
        read_timeout: float = 15.0,
        maxsize: int = 32,
        pool: urllib3.PoolManager | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.version = version.strip("/")
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pool = pool or new_pool(maxsize=maxsize)
        self._auth = auth_headers(access_token)
        self._origin = _origin(self.base_url)

    def __repr__(self) -> str:
        return f"GraphClient({self.base_url}/{self.version})"

    def url(self, path: str) -> str:
        return graph_url(self.base_url, self.version, path)

    def send_message(self, phone_number_id: str, body: bytes) -> SendResult:
        """POST ready JSON bytes to `/{phone_number_id}/messages`; the bytes go out unchanged."""
        headers = {**self._auth, "Content-Type": "application/json"}
        response = self._request(
            "POST", self.url(f"{phone_number_id}/messages"), body=body, headers=headers
        )
        return send_result(response.status, response.data)

    def get(self, path: str, params: dict | None = None) -> dict:
        """GET `{base}/{version}/{path}` and return the decoded JSON object."""
        return self._get_url(self.url(path), params)

    def iter_pages(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Yield every item of `data` across all pages of a Graph list endpoint."""
        url, query, seen = self.url(path), dict(params or {}), set()
        while url:
            page = self._get_url(url, query)
            items = page.get("data") or []
            yield from items
            url, query = self._next_page(page, path, params, has_items=bool(items), seen=seen)

    def _next_page(self, page: dict, path: str, params, *, has_items: bool, seen: set):
        paging = page.get("paging") or {}
        following = paging.get("next")
        if following and _origin(following) == self._origin and following not in seen:
            seen.add(following)
            return following, None
        after = (paging.get("cursors") or {}).get("after")
        # Meta repeats `cursors.after` on the last page; an empty page or a repeat ends the walk.
        if after and has_items and ("after", after) not in seen:
            seen.add(("after", after))
            return self.url(path), {**(params or {}), "after": after}
        return None, None

    def _get_url(self, url: str, params: dict | None) -> dict:
        headers = {**self._auth, "Accept-Encoding": "gzip"}
        response = self._request("GET", url, fields=params or None, headers=headers)
        return _json_object(response)

    def _request(self, method: str, url: str, **kwargs) -> urllib3.BaseHTTPResponse:
        try:
            response = self.pool.request(
                method, url, timeout=self.timeout, retries=False, redirect=False, **kwargs
            )
        except (ConnectTimeoutError, SSLError, LocationValueError) as exc:
            raise TransportError(f"Could not reach the Graph API: {exc}") from exc
        except HTTPError as exc:
            if method == "GET":  # Reading twice is harmless, so callers may simply retry.
                raise TransportError(f"No answer from the Graph API: {exc}") from exc
            raise AmbiguousSendError(f"Sent, but no answer from the Graph API: {exc}") from exc
        if not 200 <= response.status < 300:
            raise MetaAPIError.from_response(response.status, response.data, response.headers)
        return response


def auth_headers(access_token: str) -> dict[str, str]:
    """What every Graph API request carries for `access_token`."""
    return {"Authorization": f"Bearer {access_token}", "User-Agent": USER_AGENT}


def graph_url(base_url: str, version: str, path: str) -> str:
    # Ids from a request or a stored row go into the path: "../_sim/world" must never
    # reach another endpoint, so only plain segments (ids and edge names) are accepted.
    path = path.lstrip("/")
    if not _GRAPH_PATH.fullmatch(path):
        raise ValueError(f"Not a Graph API path: {path[:80]!r}")
    return f"{base_url.rstrip('/')}/{version.strip('/')}/{path}"


def send_result(status: int, data: bytes) -> SendResult:
    """What a 2xx answer to a send says; AmbiguousSendError when it names no message."""
    try:
        payload = json.loads(data)
        message = payload["messages"][0]
        wamid = str(message["id"])
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        # A 2xx means Meta may have taken the message; only the status webhook can tell.
        raise AmbiguousSendError(
            "The Graph API accepted the request but returned no message id",
            http_status=status,
        ) from exc
    return SendResult(
        wamid=wamid,
        message_status=str(message.get("message_status") or "accepted"),
        wa_id=_first_wa_id(payload.get("contacts")),
        http_status=status,
    )


def send_outcome(done: Done) -> SendResult:
    """A send's end from the multiplexed client (mux.py), judged as `send_message` judges one:
    raises TransportError (never sent), AmbiguousSendError or MetaAPIError."""
    if done.error is not None:
        kind = TransportError if isinstance(done.error, ConnectFailed) else AmbiguousSendError
        raise kind(str(done.error))
    answer = done.answer
    if not 200 <= answer.status < 300:
        raise MetaAPIError.from_response(answer.status, answer.body, answer.headers)
    return send_result(answer.status, answer.body)


def _first_wa_id(contacts) -> str:
    if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict):
        return str(contacts[0].get("wa_id") or "")
    return ""


def _json_object(response: urllib3.BaseHTTPResponse) -> dict:
    try:
        payload = json.loads(response.data)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise MetaAPIError(
            "The Graph API returned something that is not a JSON object",
            http_status=response.status,
        )
    return payload


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def new_pool(*, maxsize: int = 32) -> urllib3.PoolManager:
    # block=False: past `maxsize` extra connections open and are dropped after use, never waited on.
    return urllib3.PoolManager(num_pools=8, maxsize=maxsize, block=False, retries=False)


_shared: dict[int, urllib3.PoolManager] = {}
_shared_lock = threading.Lock()


def shared_pool() -> urllib3.PoolManager:
    """One pool per process; a forked worker must not reuse its parent's sockets."""
    pid = os.getpid()
    with _shared_lock:
        if pid not in _shared:
            _shared.clear()
            _shared[pid] = new_pool(maxsize=64)
        return _shared[pid]


def graph_client(access_token: str) -> GraphClient:
    """A client for `access_token` on the configured Graph URL, sharing the process's pool."""
    from django.conf import settings

    return GraphClient(
        base_url=settings.WHATSAPP_GRAPH_URL,
        version=settings.WHATSAPP_API_VERSION,
        access_token=access_token,
        pool=shared_pool(),
    )
