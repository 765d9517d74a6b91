#!/usr/bin/env python3
"""seal-reference.py - an independent reference of the seal signature (docs/seal-format.md).

Written from the document alone with Python's hashlib and hmac, it prints the
canonical encoding, the derived key's id and the signature of the test
vectors (version 1, version 2 checked against a signed model, and version 3
checked against a checksums.blake3), which
tests/unit/test_seal.c then checks the C code against.
"""
import hashlib
import hmac

SALT = b"vram-residency/v1"
INFO = b"vram-residency/v1 seal key"
KEY_ID_LABEL = b"vram-residency/v1 key id"
TAGS = {"1": b"vram-residency seal v1", "2": b"vram-residency seal v2",
        "3": b"vram-residency seal v3"}
# b3sum of "hello" (b3sum 1.2.0): Python's hashlib has no BLAKE3
HELLO_BLAKE3 = "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"


def hkdf_sha256(salt, ikm, info, length):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def canonical(fields):
    msg = TAGS[fields[0][1]] + b"\0"
    for name, value in fields:
        value = value.encode() if isinstance(value, str) else value
        msg += name.encode() + b"\0" + len(value).to_bytes(8, "big") + value
    return msg


def main():
    master = bytes(range(32))
    uuid = "MOCK-00000000-0000-0000-0000-000000000000"
    key = hkdf_sha256(SALT, master, INFO + b"\0" + uuid.encode(), 32)
    key_id = hmac.new(key, KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]
    fields = [
        ("version", "1"),
        ("path", "llama/model.gguf"),
        ("size", "5"),
        ("sha256", hashlib.sha256(b"hello").hexdigest()),
        ("fsverity", "sha256:" + "ab" * 32),
        ("device.backend", "mock"),
        ("device.index", "0"),
        ("device.name", "mock device (host memory, not a GPU)"),
        ("device.uuid", uuid),
        ("sealed_at", "2026-11-26T13:21:37Z"),
        ("key_id", key_id),
        ("alg", "HMAC-SHA256"),
    ]
    show("version 1", key, key_id, master, fields)
    # version 2: the same file checked against an OMS signature (the reference vector's key
    # hint and subject digest, tests/data/oms)
    fields[0] = ("version", "2")
    fields += [
        ("expected.kind", "oms"),
        ("expected.source", "llama/model.sig"),
        ("expected.key_hint", "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e"),
        ("expected.subject",
         "sha256:92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4"),
    ]
    show("version 2", key, key_id, master, fields)
    # version 3: the same file listed in a checksums.blake3 beside it, its BLAKE3 last
    fields[0] = ("version", "3")
    fields[12:] = [
        ("expected.kind", "blake3sums"),
        ("expected.source", "llama/checksums.blake3"),
        ("expected.key_hint", ""),
        ("expected.subject", ""),
        ("blake3", HELLO_BLAKE3),
    ]
    show("version 3", key, key_id, master, fields)


def show(title, key, key_id, master, fields):
    msg = canonical(fields)
    print(title)
    print("master secret (hex):", master.hex())
    print("derived key id:     ", key_id)
    print("canonical (hex):    ", msg.hex())
    print("canonical sha256:   ", hashlib.sha256(msg).hexdigest())
    print("signature:          ", hmac.new(key, msg, hashlib.sha256).hexdigest())


if __name__ == "__main__":
    main()
