"""Ed25519 keys for signed checkpoints (issue 14).

The private key lives in a file outside the database (WUGUAN_CHECKPOINT_KEY): whoever can
write to Postgres still cannot sign. Its public half is published as one line,
`ed25519 <base64 of the 32 raw bytes>`, which is all an auditor needs; a key is named by its
id, the first 8 bytes of the SHA-256 of those raw bytes.
"""
from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigError

KEY_SETTING = "WUGUAN_CHECKPOINT_KEY"
PUBLIC_KEYS_SETTING = "WUGUAN_CHECKPOINT_PUBLIC_KEYS"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(*_RAW)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).digest()[:8].hex()


def public_line(key: Ed25519PublicKey) -> str:
    return f"ed25519 {base64.b64encode(raw_public(key)).decode()}"


def generate(path: Path) -> Ed25519PublicKey:
    """A new key pair: the private key at `path` (mode 0600), its public line at `path`.pub."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never overwrite a key in use
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = private.public_key()
    Path(f"{path}.pub").write_text(public_line(public) + "\n")
    return public


def load_private(path: str | Path, setting: str = KEY_SETTING) -> Ed25519PrivateKey:
    """The signing key; ConfigError naming the setting and the path when it cannot be used."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(setting, f"cannot read the checkpoint signing key {str(path)!r}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(setting, f"{str(path)!r} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(setting, f"{str(path)!r} is not an Ed25519 key")
    return key


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key from its published line, or from a PEM public key."""
    text = text.strip()
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    kind, _, body = text.partition(" ")
    if kind != "ed25519":
        raise ValueError("expected a line `ed25519 <base64>`")
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(body.strip(), validate=True))


def load_public_keys(paths: Iterable[str | Path], setting: str = PUBLIC_KEYS_SETTING) -> dict[str, Ed25519PublicKey]:
    """The trusted keys by id, from public-key files (a private key file also gives its public half)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(setting, f"cannot read public key file {str(path)!r}: {exc.strerror}") from None
        if "PRIVATE KEY" in text:
            key = load_private(path, setting).public_key()
        else:
            try:
                key = parse_public(text)
            except ValueError as exc:
                raise ConfigError(setting, f"{str(path)!r}: {exc}") from None
        keys[key_id(key)] = key
    return keys


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def signature_valid(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
