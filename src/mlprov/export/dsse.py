"""DSSE envelopes (Dead Simple Signing Envelope v1), signed with the ledger's Ed25519 key.

The signature covers the pre-authentication encoding of the payload, never a
re-serialisation of it::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

with each LEN the byte count in ASCII decimal. An envelope is the JSON object
``{"payload": base64(body), "payloadType": type, "signatures": [{"keyid", "sig"}]}``;
the keyid is the signing key's id as mlprov names it (``name+hhhhhhhh``, the C2SP
signed-note key id), so a verifier that matches keys by keyid (securesystemslib) finds it.
See https://github.com/secure-systems-lab/dsse/blob/master/protocol.md.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from mlprov.errors import InputError, SignatureError
from mlprov.ledger.keys import SignerKey, VerifierKey, b64decode_strict

__all__ = ["Envelope", "Signature", "pae"]

_FIELDS = {"payload", "payloadType", "signatures"}


def pae(payload_type: str, payload: bytes) -> bytes:
    """The bytes a DSSE signature covers (protocol v1)."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    """One signature of an envelope: the key id it names and the raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: the exact payload bytes, their type, and signatures over PAE."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @classmethod
    def sign(cls, payload_type: str, payload: bytes, key: SignerKey) -> Envelope:
        """An envelope of `payload` signed by `key` (Ed25519 over PAE)."""
        sig = key.sign(pae(payload_type, payload))
        return cls(payload_type, payload, (Signature(key.key_id, sig),))

    def to_json(self) -> dict[str, object]:
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in self.signatures
            ],
        }

    def dumps(self) -> bytes:
        """The envelope as JSON (two-space indent, a final newline)."""
        return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def parse(cls, data: bytes, where: str = "the file") -> Envelope:
        """Read an envelope; a file that is no envelope at all is an InputError, while an
        envelope whose base64 does not decode was damaged (SignatureError, exit 10)."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise InputError(
                f"{where} is not JSON, so not a DSSE envelope",
                "give the file `mlprov export intoto` wrote",
            ) from None
        if not isinstance(doc, dict) or not doc.keys() >= _FIELDS:
            raise InputError(
                f"{where} is not a DSSE envelope: it needs payload, payloadType and signatures",
                "give the file `mlprov export intoto` wrote",
            )
        kind, body, sigs = doc["payloadType"], doc["payload"], doc["signatures"]
        if not isinstance(kind, str) or not isinstance(body, str) or not isinstance(sigs, list):
            raise InputError(
                f"{where} is not a DSSE envelope: payload and payloadType must be text and "
                "signatures a list",
                "give the file `mlprov export intoto` wrote",
            )
        payload = _b64(body, f"the payload of {where}")
        found: list[Signature] = []
        for item in sigs:
            if not isinstance(item, dict) or not isinstance(item.get("sig"), str):
                raise InputError(f"{where} has a signature without its sig text")
            keyid = item.get("keyid", "")
            found.append(
                Signature(keyid if isinstance(keyid, str) else "", _b64(item["sig"], where))
            )
        return cls(kind, payload, tuple(found))

    def verify(self, key: VerifierKey) -> Signature:
        """The signature `key` made over this envelope's PAE; SignatureError if there is
        none (no signature names the key, or the one that does fails: a changed byte)."""
        message = pae(self.payload_type, self.payload)
        named = [s for s in self.signatures if s.keyid in (key.key_id, "")]
        if not named:
            signers = ", ".join(s.keyid for s in self.signatures) or "nobody"
            raise SignatureError(
                f"the envelope is not signed by key {key.key_id} (signed by {signers})",
                "give the public key of the ledger that wrote it",
            )
        for s in named:
            if key.verify(message, s.sig):
                return s
        raise SignatureError(
            f"the envelope's signature by {key.key_id} does not verify: its payload, payload "
            "type or signature was changed",
            "do not trust this attestation; export it again from the ledger",
        )


def _b64(text: str, what: str) -> bytes:
    raw = b64decode_strict(text)
    if raw is None:
        raise SignatureError(
            f"{what} is not canonical base64: the envelope was changed",
            "do not trust this attestation; export it again from the ledger",
        )
    return raw
