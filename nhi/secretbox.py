"""Encryption of stored secrets (webhook signing secrets) with a key derived from the JWT secret.

DESIGN.md §1: production starts with ``NHI_JWT_SECRET_KEY`` alone, so the encryption key is
derived from it with HKDF-SHA256 (a distinct ``info`` label, so it is never the JWT key itself) and
used with Fernet (AES-128-CBC + HMAC-SHA256). Rotating the JWT secret makes stored webhook secrets
unreadable: rotate the webhook secrets afterwards.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_INFO = b"nhi webhook secrets v1"


@functools.lru_cache(maxsize=8)
def _fernet(master: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(master.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _box() -> Fernet:
    return _fernet(str(current_app.config["JWT_SECRET_KEY"]))


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` for storage (a Fernet token, ASCII)."""
    return _box().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a value produced by :func:`encrypt`; raises ``cryptography.fernet.InvalidToken``."""
    return _box().decrypt(token.encode("ascii")).decode()
