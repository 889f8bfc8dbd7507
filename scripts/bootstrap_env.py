"""Create a local .env with fresh secrets the first time; never overwrite an existing one."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

TEMPLATE = """# Written by scripts/bootstrap_env.py for local development. Never commit this file.
DEBUG=true
SECRET_KEY={secret_key}
FIELD_ENCRYPTION_KEY={field_key}
# The sandbox (`make run` starts it) and the demo tenant live on loopback.
SENSELINK_ALLOW_PRIVATE_HOSTS=true
KOT_API_BASE_URL=http://127.0.0.1:8701/v1.0
SECURE_SSL_REDIRECT=false
SECURE_COOKIES=false
"""


def main() -> int:
    path = Path(__file__).resolve().parent.parent / ".env"
    if path.exists():
        print(f"{path.name} exists; leaving it as it is.")
        return 0
    path.write_text(
        TEMPLATE.format(
            secret_key=secrets.token_urlsafe(50), field_key=Fernet.generate_key().decode()
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    print(f"Created {path.name} with a new SECRET_KEY and FIELD_ENCRYPTION_KEY.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
