#!/usr/bin/env python3
"""oms_sign.py - signs a model directory as OpenSSF model signing does, with OpenSSL doing ECDSA.

Written for the tests from the format (docs/expected-digests.md): an in-toto Statement v1 of
predicate type https://model_signing/signature/v1.0 listing every file's SHA-256 (method
"files"), the subject digest over the resources' raw digests in name order, wrapped in a DSSE
envelope signed over the pre-authentication encoding with `openssl dgst -sign` (SHA-256 for a
P-256 key, SHA-384 for P-384), inside a Sigstore bundle v0.3 whose publicKey.hint is the hex
SHA-256 of the key's canonical PEM (`openssl pkey -pubin` prints it). An independent signer:
the daemon's verifier is Nettle's, this one is OpenSSL's.

OMS 1.1's other shapes too: --hash blake2b (Python's hashlib) or blake3 (the `b3sum` command),
--shards N (method "shards": each file cut into N-byte pieces named PATH:START:END, algorithm
"<hash>-sharded-N", an empty file cut into none, as model_signing does), and --cert LEAF.pem
[--chain CA.pem]... (certificate mode: verificationMaterial.x509CertificateChain holds the leaf
and the chain as DER, `openssl x509` converting them; KEY is then the leaf's private key).

usage: oms_sign.py PRIVATE_KEY.pem MODEL_DIR [--ignore PATH]... [--raw-key] [--allow-symlinks]
       [--hash sha256|blake2b|blake3] [--shards N] [--cert LEAF.pem [--chain CA.pem]...]
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


def digest_of(data, hash_type):
    if hash_type == "sha256":
        return hashlib.sha256(data).hexdigest()
    if hash_type == "blake2b":
        return hashlib.blake2b(data).hexdigest()
    out = subprocess.run(["b3sum", "--no-names"], input=data, check=True,
                         capture_output=True).stdout.decode()
    return out.split()[0]


def der_of(pem_path):
    return openssl("x509", "-in", pem_path, "-outform", "DER")


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
    ap.add_argument("--hash", default="sha256", choices=["sha256", "blake2b", "blake3"])
    ap.add_argument("--shards", type=int, default=0, help="method shards, of this many bytes")
    ap.add_argument("--cert", help="sign in certificate mode with this leaf certificate")
    ap.add_argument("--chain", action="append", default=[],
                    help="certificates after the leaf (intermediates, the root)")
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
                data = fh.read()
            if not a.shards:
                resources.append({"algorithm": a.hash, "name": rel, "key": (rel, 0),
                                  "digest": digest_of(data, a.hash)})
                continue
            for start in range(0, len(data), a.shards):
                end = min(start + a.shards, len(data))
                resources.append({"algorithm": "%s-sharded-%d" % (a.hash, a.shards),
                                  "name": "%s:%d:%d" % (rel, start, end), "key": (rel, start),
                                  "digest": digest_of(data[start:end], a.hash)})
    # model_signing's order: by path (as PurePosixPath compares: component by component),
    # then by offset; the subject hashes the digests in this order
    resources.sort(key=lambda r: (r["key"][0].split("/"), r["key"][1]))
    for r in resources:
        del r["key"]
    subject = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources))
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": os.path.basename(os.path.abspath(a.model)),
                     "digest": {"sha256": subject.hexdigest()}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": dict({"method": "shards" if a.shards else "files",
                                   "hash_type": a.hash, "allow_symlinks": a.allow_symlinks,
                                   "ignore_paths": a.ignore},
                                  **({"shard_size": float(a.shards)} if a.shards else {})),
            "resources": resources,
        },
    }
    payload = json.dumps(statement, sort_keys=True).encode()
    ptype = "application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype.encode(), len(payload), payload)
    pub = openssl("pkey", "-in", a.key, "-pubout")
    text = openssl("pkey", "-in", a.key, "-noout", "-text").decode()
    digest = "-sha512" if "521" in text else "-sha384" if "384" in text else "-sha256"
    sig = openssl("dgst", digest, "-sign", a.key, data=pae)
    if a.cert:
        certs = [{"rawBytes": base64.b64encode(der_of(c)).decode()} for c in [a.cert] + a.chain]
        material = {"x509CertificateChain": {"certificates": certs}, "tlogEntries": []}
    elif a.raw_key:
        material = {"publicKey": {"rawBytes": base64.b64encode(pub).decode()},
                    "tlogEntries": []}
    else:
        material = {"publicKey": {"hint": hashlib.sha256(pub).hexdigest()}, "tlogEntries": []}
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": ptype,
                         "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}]},
    }
    out = a.out or os.path.join(a.model, "model.sig")
    with open(out, "w") as fh:
        json.dump(bundle, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
