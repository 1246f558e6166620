"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

``webhook-signature`` holds one or more space-separated signatures over
``f"{id}.{timestamp}.{body}"``:

* ``v1,`` + base64(HMAC-SHA256(key, ...)) where ``key`` is the base64 part of the
  listener's ``whsec_`` secret (the default scheme);
* ``v1a,`` + base64(Ed25519 signature) by the listener's private ``whsk_`` key; the
  listener shows (and receivers verify with) the public ``whpk_`` key.

During a rotation's grace period a delivery carries a signature by the new key and one
by the old. Receivers verify ``v1`` with the stock ``standardwebhooks`` package and both
with ``tidings_client.verify_webhook``. Keys are never logged.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SECRET_PREFIX = "whsec_"
PRIVATE_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"
SECRET_BYTES = 24
SCHEMES = ("v1", "v1a")


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


@dataclass(frozen=True, slots=True)
class KeyPair:
    """What a listener shows as ``secret`` and what signs (the same for ``v1``)."""

    scheme: str
    shown: str  # whsec_... (v1) or whpk_... (v1a)
    signing: str  # whsec_... (v1) or whsk_... (v1a)


def new_keys(scheme: str) -> KeyPair:
    if scheme == "v1":
        secret = new_secret()
        return KeyPair("v1", secret, secret)
    if scheme != "v1a":
        raise ValueError(f"unknown signature scheme {scheme!r}")
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes_raw()
    # As libsodium spells an Ed25519 secret key: the seed, then the public key.
    return KeyPair(
        "v1a",
        PUBLIC_PREFIX + base64.b64encode(public).decode("ascii"),
        PRIVATE_PREFIX + base64.b64encode(seed + public).decode("ascii"),
    )


class Signer:
    """Signs attempts with one key; built once per key, not per attempt."""

    __slots__ = ("_hmac", "_private")

    def __init__(self, scheme: str, signing_key: str) -> None:
        self._hmac: hmac.HMAC | None = None
        self._private: Ed25519PrivateKey | None = None
        if scheme == "v1a":
            raw = base64.b64decode(signing_key.removeprefix(PRIVATE_PREFIX))
            self._private = Ed25519PrivateKey.from_private_bytes(raw[:32])
        else:
            # Keyed once; each attempt signs with a copy. OpenSSL 3 looks the digest up
            # by name and keys a new context on every one-shot ``hmac.digest``.
            self._hmac = hmac.new(secret_key(signing_key), digestmod="sha256")

    def __repr__(self) -> str:  # never the key
        return "Signer(...)"

    def sign(self, msg_id: str, timestamp_s: int, body: bytes) -> str:
        signed = b"%s.%d.%s" % (msg_id.encode("ascii"), timestamp_s, body)
        if self._private is None:
            assert self._hmac is not None
            mac = self._hmac.copy()
            mac.update(signed)
            return "v1," + base64.b64encode(mac.digest()).decode("ascii")
        return "v1a," + base64.b64encode(self._private.sign(signed)).decode("ascii")
