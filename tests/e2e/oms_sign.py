#!/usr/bin/env python3
"""oms_sign.py - signs a model directory as OpenSSF model signing does, with OpenSSL doing ECDSA.

Written for the tests from the format (docs/expected-digests.md): an in-toto Statement v1 of
predicate type https://model_signing/signature/v1.0 listing every file's SHA-256 (method
"files"), the subject digest over the resources' raw digests in name order, wrapped in a DSSE
envelope signed over the pre-authentication encoding with `openssl dgst -sign` (SHA-256 for a
P-256 key, SHA-384 for P-384), inside a Sigstore bundle v0.3 whose publicKey.hint is the hex
SHA-256 of the key's canonical PEM (`openssl pkey -pubin` prints it). An independent signer:
the daemon's verifier is Nettle's, this one is OpenSSL's.

usage: oms_sign.py PRIVATE_KEY.pem MODEL_DIR [--ignore PATH]... [--raw-key] [--allow-symlinks]
       [--out FILE]
"""
import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys

DEFAULT_IGNORES = [".git", ".gitattributes", ".github", ".gitignore", "model.sig"]


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True,
                          capture_output=True).stdout


def ignored(rel, ignores):
    return any(rel == p or rel.startswith(p + "/") for p in ignores)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("key")
    ap.add_argument("model")
    ap.add_argument("--ignore", action="append", default=[])
    ap.add_argument("--raw-key", action="store_true",
                    help="carry the public key itself (model_signing 1.0.x) instead of a hint")
    ap.add_argument("--allow-symlinks", action="store_true",
                    help="state serialization.allow_symlinks true (links are hashed as their target)")
    ap.add_argument("--out")
    a = ap.parse_args()

    ignores = DEFAULT_IGNORES + a.ignore
    resources = []
    for root, dirs, files in os.walk(a.model):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), a.model)
            if ignored(rel, ignores):
                continue
            with open(os.path.join(root, f), "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            resources.append({"algorithm": "sha256", "name": rel, "digest": digest})
    resources.sort(key=lambda r: r["name"])
    subject = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources))
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": os.path.basename(os.path.abspath(a.model)),
                     "digest": {"sha256": subject.hexdigest()}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256",
                              "allow_symlinks": a.allow_symlinks, "ignore_paths": a.ignore},
            "resources": resources,
        },
    }
    payload = json.dumps(statement, sort_keys=True).encode()
    ptype = "application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype.encode(), len(payload), payload)
    pub = openssl("pkey", "-in", a.key, "-pubout")
    text = openssl("pkey", "-in", a.key, "-noout", "-text").decode()
    digest = "-sha384" if "384" in text else "-sha256"
    sig = openssl("dgst", digest, "-sign", a.key, data=pae)
    if a.raw_key:
        pk = {"rawBytes": base64.b64encode(pub).decode()}
    else:
        pk = {"hint": hashlib.sha256(pub).hexdigest()}
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": pk, "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": ptype,
                         "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}]},
    }
    out = a.out or os.path.join(a.model, "model.sig")
    with open(out, "w") as fh:
        json.dump(bundle, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
