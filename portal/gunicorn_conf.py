"""gunicorn settings for the Procfile's `web` line (`--config python:portal.gunicorn_conf`).

Everything a platform varies comes from the environment: PORT (default 8000), WEB_CONCURRENCY
(worker processes, default 2), WEB_THREADS (threads per worker, default 4). The rest is chosen
for a portal behind a load balancer.
"""

from __future__ import annotations

import os
import time

# Every log line in one zone, Japan's. gunicorn's master never loads Django (no preloading), so
# it would stamp its lines in the machine's zone (UTC on most platforms) while the workers, the
# clusters and the portal's own logs use Django's TIME_ZONE (Django sets TZ when it starts).
os.environ["TZ"] = "Asia/Tokyo"  # = settings.TIME_ZONE
time.tzset()

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, not plain sync workers: a load balancer that does not buffer requests (an AWS ALB)
# would let one slow client hold a whole sync worker; keep-alive needs threads too.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# Longer than the usual load-balancer idle timeout (ALB: 60 s), so the balancer closes idle
# connections first and never sends a request on one gunicorn has just closed (a 502).
keepalive = 75
# A request the portal cannot answer in 30 s is stuck (every outbound call has its own shorter
# timeouts; syncs run on the cluster, never in a request). A deploy's SIGTERM lets requests end.
timeout = 30
graceful_timeout = 30
# Recycle workers now and then, with jitter so they do not all restart at once.
max_requests = 2000
max_requests_jitter = 200
# Access log to stdout without query strings or referrers (%(U)s is the path alone): nothing a
# URL might carry ends up in the logs. X-Forwarded-For shows the client behind the balancer.
accesslog = "-"
access_log_format = (
    '%(h)s %({x-forwarded-for}i)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
)
# The access log writes the push receiver's path without its token (the token is the secret).
logger_class = "portal.gunicorn_logging.RedactingLogger"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The portal stays a plain WSGI app: no preloading (each worker opens its own connections).
preload_app = False
# No runtime control socket (gunicorn ≥ 25): nothing here uses `gunicornc`, its default path in
# $HOME may be read-only on a platform, and two servers on one host would share it.
control_socket_disable = True
