"""The console's signing key: one Ed25519 key, generated once and kept.

Kept in ``LEADFLOW_CONSOLE_SIGNING_KEY_FILE`` (a PEM file, created on first start) when that
is set, otherwise in the console's own schema (``signing_keys``), so every replica signs with
the same key and a restart does not sign everyone out. The key id is the RFC 7638
thumbprint of the public key; the JWKS publishes the public half only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALGORITHM = "EdDSA"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def public_jwk(self) -> dict[str, Any]:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}

    @property
    def kid(self) -> str:
        # RFC 7638: the SHA-256 of the required members, sorted, without whitespace.
        canonical = json.dumps(self.public_jwk, sort_keys=True, separators=(",", ":"))
        return _b64(hashlib.sha256(canonical.encode()).digest())

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.public_jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}]}

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def generate() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def from_pem(pem: bytes) -> SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the console's signing key must be an Ed25519 private key")
    return SigningKey(key)


def from_file(path: Path) -> SigningKey:
    """The key in ``path``, created there (mode 0600) on first use."""
    if path.exists():
        return from_pem(path.read_bytes())
    key = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.pem())
    finally:
        os.close(fd)
    return key
