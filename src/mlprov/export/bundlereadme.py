"""The README of an auditor's bundle: for each file, how to check it with public tools
(`sha256sum`, `openssl`, `jq`, Python with `cryptography`, `prov`, `mlcroissant`, in-toto)
and without mlprov. Filled from the bundle's own facts (:mod:`mlprov.export.bundle`)."""

from __future__ import annotations

from typing import Any

__all__ = ["readme"]

_INCLUSION = '''\
```python
from hashlib import sha256

def root_from_proof(event_hex, index, size, hashes):
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to (None: malformed)."""
    if index >= size:
        return None
    fn, sn = index, size - 1
    r = sha256(b"\\x00" + bytes.fromhex(event_hex)).digest()  # the leaf
    for p in map(bytes.fromhex, hashes):
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = sha256(b"\\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = sha256(b"\\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None
```'''


def readme(facts: dict[str, Any]) -> str:
    """The README text for a bundle described by `facts` (see `bundle._facts`)."""
    f = facts
    key_lines = "\n".join(f"- `{path}.pub` and `{path}.pem`: {kid}" for kid, path in f["keys"])
    cp_pem, att_pem = f["checkpoint_pem"], f["attestation_pem"]
    artifact = (
        f"`sha256sum` of the model file gives `{f['artifact']}`"
        if f["artifact_kind"] == "file"
        else f"the model is a directory: its digest `{f['artifact']}` is the "
        "`mlprov-artifact/1` digest of its files (the `artifact_semantics` field of the "
        "build event says so)"
    )
    croissant = (
        "`croissant/metadata.json` is the training set's Croissant 1.1 metadata, beside "
        "the data files it names (each with its SHA-256). Validate it with mlcroissant:\n\n"
        "```sh\nmlcroissant validate --jsonld croissant/metadata.json\n```\n\n"
        "Its `mlprov:recordRoot` and `mlprov:event` are the dataset's record-set root and "
        "event, both in `record-sets.json` and `events/`."
        if f["croissant"]
        else "This bundle holds no Croissant metadata: it describes the training set's data "
        "files, and none were given (`mlprov export bundle BUILD DIR --data FILE`)."
    )
    return f"""\
# Provenance bundle of build {f["build"]}

This folder lets anyone check the provenance of the build `{f["build"]}` (event
`sha256:{f["build_hex"]}`) of the ledger `{f["origin"]}`, with public tools and without
that ledger. It shows the ledger as it stood at its signed checkpoint of size {f["size"]}
(root `{f["root"]}`), in {f["events"]} events: the build and those on its path (the
frozen manifest and dataset, the steps and runs that made it, its sources and opt-out
lists, their reviews, quarantines and releases, and the build's evaluations).

Check the files in this order: what each one proves rests on the ones before it.

## 1. The files are the ones listed

`bundle.json` lists every file with its SHA-256; `SHA256SUMS` holds the same digests:

```sh
sha256sum -c SHA256SUMS
```

This catches damage in transit; the steps below are what make the files evidence.

## 2. The public keys

{key_lines}

Each `.pub` file is the key as the ledger names it (`name+keyhash+base64(0x01 || key)`,
a C2SP signed-note verifier key); the `.pem` file is the same Ed25519 key for `openssl`.
Compare the key with the one the ledger's owner publishes: a bundle cannot vouch for
its own keys.

## 3. The signed checkpoint: `checkpoint.txt`

A C2SP signed note (c2sp.org/tlog-checkpoint): the origin, the tree size and the base64
RFC 9162 root hash, a blank line, then one line per signature,
`— <key name> base64(4-byte key hash || 64-byte Ed25519 signature)`. The signature
covers the text before the blank line, byte for byte:

```sh
sed '/^$/,$d' checkpoint.txt > checkpoint.body
grep -F '— {f["checkpoint_key"]} ' checkpoint.txt | head -n1 | cut -d' ' -f3 | base64 -d \\
  | tail -c 64 > checkpoint.sig
openssl pkeyutl -verify -pubin -inkey {cp_pem}.pem -rawin \\
  -in checkpoint.body -sigfile checkpoint.sig
```

## 4. The events: `events/HEX.json`

Each file holds an event's canonical bytes (RFC 8785 JSON); the SHA-256 of those bytes is
the event's digest, and the file's name:

```sh
(cd events && for f in *.json; do echo "${{f%.json}}  $f"; done | sha256sum -c)
```

An event names its parents by digest (`parents`), so the files link into the build's
path. The build event is `events/{f["build_hex"]}.json`; its `artifact_digest` names
the model: {artifact}.

## 5. Each event is in the signed log: `proofs/HEX.json`

An RFC 9162 inclusion proof of the event at the checkpoint: `index` (its place in the
log), `tree_size` and `root` (those of the checkpoint, which the proof also carries in
`checkpoint`) and the audit path `hashes`. The leaf is the event's digest: its hash is
`SHA-256(0x00 || 32 digest bytes)`, interior nodes `SHA-256(0x01 || left || right)`.
A proof holds when `tree_size` is {f["size"]}, the path leads to `{f["root"]}` and
the checkpoint's signature verified in step 3:

{_INCLUSION}

## 6. The record-set roots: `record-sets.json`

Each source's and dataset's record-set root (a Merkle root over its record digests) and
record count, with its event; each is the `record_root` of that event's bytes in
`events/`. A membership or non-membership proof of one record (`mlprov why`, `mlprov
prove`) ends at one of these roots.

## 7. The W3C PROV document: `prov.json`

The same events as PROV-JSON: sources and datasets are entities; steps, runs, builds and
reviews activities; pipelines and reviewers agents. Every element carries its event's
digest (`mlprov:event`) and bytes (`mlprov:body`), which match `events/`. Read it with
the `prov` package:

```sh
python -c "import prov; print(prov.read('prov.json', format='json').get_provn())"
```

## 8. The attestation: `attestation.intoto.json`

An in-toto Statement v1 with an SLSA Provenance v1 predicate, in a DSSE envelope signed
with Ed25519: its subject is the model with the digest `{f["artifact"]}`, its
`invocationId` the build event. The signature covers the DSSE pre-authentication
encoding `DSSEv1 <len(type)> <type> <len(payload)> <payload>`:

```sh
jq -r .payload attestation.intoto.json | base64 -d > statement.json
type=$(jq -r .payloadType attestation.intoto.json)
{{ printf 'DSSEv1 %d %s %d ' ${{#type}} "$type" $(wc -c < statement.json)
  cat statement.json; }} > statement.pae
jq -r '.signatures[0].sig' attestation.intoto.json | base64 -d > statement.sig
openssl pkeyutl -verify -pubin -inkey {att_pem}.pem -rawin \\
  -in statement.pae -sigfile statement.sig
```

in-toto's and securesystemslib's verifiers check it too, with the key in `{att_pem}.pub`
(`mlprov attest verify attestation.intoto.json --key {att_pem}.pub`, where mlprov is
installed).

## 9. The training set's Croissant metadata

{croissant}
"""
