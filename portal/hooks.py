"""The receiver of SenseLink's event subscription (push): ``POST /hooks/senselink/<token>/``.

SenseLink cannot authenticate to us: the unguessable token is the secret, so it is never
logged (the access log line is written without it, see ``portal.gunicorn_conf``). The view
only reads a bounded body and hands it to the push service, which answers at once.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.services import push

log = logging.getLogger(__name__)


def _read_bounded(request: HttpRequest) -> bytes | None:
    """The body, or None when it is (or claims to be) larger than push.BODY_LIMIT."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > push.BODY_LIMIT:
        return None
    body = request.read(push.BODY_LIMIT + 1)
    return None if len(body) > push.BODY_LIMIT else body


@csrf_exempt
@require_POST
def senselink_push(request: HttpRequest, token: str) -> HttpResponse:
    body = _read_bounded(request)
    if body is None:
        return _answer(413)
    try:
        outcome = push.receive_push(token=token, body=body)
    except Exception as exc:
        # A 500 would make SenseLink stop every later push (and Django would log the path with
        # its token): answer 200; the tenant's next interval poll reads the record anyway.
        log.error(
            "push receiver failed (%s: %s); answered 200, the next poll reads the record",
            type(exc).__name__,
            str(exc).replace(token, "***")[:200],
        )
        return _answer(200)
    return _answer(outcome.status)


def _answer(status: int) -> HttpResponse:
    response = HttpResponse("OK" if status == 200 else "", status=status)
    if status >= 400:
        # Django logs every 4xx with its path ("Not Found: /hooks/senselink/<token>/"): the
        # push service has logged what matters, without the token.
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response
