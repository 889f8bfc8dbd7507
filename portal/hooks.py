"""The receiver of SenseLink's event subscription (push): ``POST /hooks/senselink/<token>/``.

SenseLink stops every later push after one answer other than 200 (or none within 5 s), and it
follows no redirect. So for a known token every POST is answered 200 at once, whatever its body
(the push service counts and logs what it cannot use), with or without the trailing slash;
an unknown token is 404, another method 405. The token is the secret (SenseLink cannot
authenticate to us): this view owns every path under ``/hooks/senselink/`` and marks each of
its non-200 answers as logged, so Django never logs the path; every log record is redacted
anyway (``portal.log_redaction``).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from integrations.services import push

log = logging.getLogger(__name__)


@csrf_exempt
def senselink_push(request: HttpRequest, rest: str = "") -> HttpResponse:
    # ``rest`` is everything after /hooks/senselink/: the token, with or without a slash.
    token, _slash, beyond = rest.partition("/")
    if request.method != "POST":
        response = _answer(405)
        response["Allow"] = "POST"
        return response
    if beyond:
        return _answer(404)
    try:
        outcome = push.receive_push(token=token, body=_read_bounded(request))
    except Exception as exc:
        # A 500 would make SenseLink stop every later push (and Django would log the path with
        # its token): answer 200; the tenant's next interval poll reads the record anyway.
        log.error(
            "push receiver failed (%s: %s); answered 200, the next poll reads the record",
            type(exc).__name__,
            str(exc).replace(token, "***")[:200] if token else str(exc)[:200],
        )
        return _answer(200)
    return _answer(outcome.status)


def _read_bounded(request: HttpRequest) -> bytes | None:
    """The body, or None when it is (or claims to be) larger than push.BODY_LIMIT: a body
    declared larger is not read at all, and no more than one byte over the limit ever is."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0  # Django reads such a body as empty
    if declared > push.BODY_LIMIT:
        return None
    body = request.read(push.BODY_LIMIT + 1)
    return None if len(body) > push.BODY_LIMIT else body


def _answer(status: int) -> HttpResponse:
    response = HttpResponse("OK" if status == 200 else "", status=status)
    # Django logs every 4xx with its path ("Not Found: /hooks/senselink/<token>/"): what
    # matters was logged by the push service, without the token.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
