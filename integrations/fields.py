"""Encrypted model fields that fail closed.

django-encrypted-model-fields returns the ciphertext as if it were the value when the key is
wrong (and a later save encrypts it twice). These fields raise instead, so a wrong
``FIELD_ENCRYPTION_KEY`` is an error, never a silently corrupted secret.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models
from encrypted_model_fields.fields import EncryptedTextField

MARKER = "…"


def fit(value: str, max_length: int) -> str:
    """``value`` cut to ``max_length`` characters, ending with "…" when it was cut."""
    if len(value) <= max_length:
        return value
    return value[: max_length - len(MARKER)] + MARKER


class FittedCharField(models.CharField):
    """A CharField for strings from upstream (a KOT code, a SenseLink job number): a value
    longer than the column is stored cut with "…" instead of failing the whole write
    (PostgreSQL refuses it with DataError; SQLite never checks). Applies to save, bulk_create
    and update alike."""

    def get_db_prep_save(self, value, connection):
        if isinstance(value, str) and self.max_length is not None:
            value = fit(value, self.max_length)
        return super().get_db_prep_save(value, connection)


class SecretDecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _crypter(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def crypter() -> MultiFernet:
    """The crypter for the keys configured now (the first key encrypts, all decrypt)."""
    keys = settings.FIELD_ENCRYPTION_KEY
    if isinstance(keys, str):
        keys = [keys]
    return _crypter(tuple(keys))


def encrypt(value: str) -> str:
    return crypter().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    return crypter().decrypt(token.encode("ascii")).decode("utf-8")


def secret_digest(value: str) -> str:
    """A keyed hash (HMAC-SHA256) of a secret, to find equal secrets without decrypting them.

    Fernet ciphertexts of one value differ every time, so equality needs this. The key is derived
    from the first FIELD_ENCRYPTION_KEY (never stored): ``reencrypt_secrets`` refreshes the
    digests when that key changes. Empty for an empty secret.
    """
    if not value:
        return ""
    key = hashlib.sha256(b"portal secret digest|" + crypter_key().encode("ascii")).digest()
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def crypter_key() -> str:
    keys = settings.FIELD_ENCRYPTION_KEY
    return keys if isinstance(keys, str) else keys[0]


class SecretField(EncryptedTextField):
    """A write-only secret: Fernet-encrypted at rest, empty string stored as empty.

    Reading a row whose value no configured key decrypts raises SecretDecryptionError.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        try:
            return decrypt(value)
        except (InvalidToken, UnicodeEncodeError, ValueError):
            raise SecretDecryptionError(
                f"{self.model.__name__}.{self.name} cannot be decrypted with the configured "
                "FIELD_ENCRYPTION_KEY (wrong key, or a value that was never encrypted)."
            ) from None

    def to_python(self, value):
        # Form input and assigned values are plaintext; only from_db_value sees ciphertext.
        return value

    def get_db_prep_save(self, value, connection):
        if value is None or value == "":
            return value
        return encrypt(str(value))
