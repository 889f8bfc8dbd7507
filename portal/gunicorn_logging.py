"""gunicorn's logger, with the SenseLink push token cut out of every access-log line.

The same redaction as every other log record (``portal.log_redaction``); this class also
covers the lines gunicorn writes before the portal's logging is configured in a worker.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from portal.log_redaction import redact

# The name the tests and older code know.
redact_path = redact


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms
