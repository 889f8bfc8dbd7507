"""Japan's time zone, declared once: every time a person or KOT sees is in it.

It lives in connectors/ because the connectors need it and must not import the Django app.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

# No daylight saving since 1951: every JST day of the service is 24 hours long.
JST = ZoneInfo("Asia/Tokyo")
