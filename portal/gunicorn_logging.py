"""gunicorn's logger, with the SenseLink push token cut out of every access-log line."""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

_PUSH_PATH = re.compile(r"(/hooks/senselink/)[^/?\s]+")


def redact_path(text: str) -> str:
    """``/hooks/senselink/<token>/`` becomes ``/hooks/senselink/***/``."""
    return _PUSH_PATH.sub(r"\1***", text)


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r", "{raw_uri}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact_path(atoms[key])
        return atoms
