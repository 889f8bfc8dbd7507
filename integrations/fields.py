"""Encrypted model fields that fail closed.

django-encrypted-model-fields returns the ciphertext as if it were the value when the key is
wrong (and a later save encrypts it twice). These fields raise instead, so a wrong
``FIELD_ENCRYPTION_KEY`` is an error, never a silently corrupted secret.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from encrypted_model_fields.fields import EncryptedTextField


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
