"""Tensors of a sealed safetensors file, viewed in place in the daemon's memory (no copy).

    python3 safetensors_tensors.py /run/vram llama/model.safetensors [--verify]

Prints each tensor's name, dtype, shape and the SHA-256 of its bytes. With PyTorch, the same
views become tensors without a copy: on CUDA `torch.as_tensor(view)` of an object carrying
__cuda_array_interface__, on the mock `torch.from_numpy(array)`.
"""
import hashlib
import json
import struct
import sys

import numpy
import vram_client

DTYPES = {"F64": numpy.float64, "F32": numpy.float32, "F16": numpy.float16,
          "I64": numpy.int64, "I32": numpy.int32, "I16": numpy.int16, "I8": numpy.int8,
          "U8": numpy.uint8, "BOOL": numpy.bool_}


def tensors(mapping):
    """Yields (name, numpy array viewing the mapping) for each tensor (host memory)."""
    raw = numpy.frombuffer(mapping.buffer, dtype=numpy.uint8)  # the mapping itself
    (n,) = struct.unpack("<Q", raw[:8].tobytes())
    header = json.loads(raw[8:8 + n].tobytes())
    base = 8 + n
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        dtype = numpy.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        yield name, raw[base + begin:base + end].view(dtype).reshape(t["shape"])


def main():
    mount, path = sys.argv[1], sys.argv[2]
    with vram_client.Client(mount) as c, c.map(path, verify="--verify" in sys.argv) as m:
        print("# %s: %d bytes, sealed fs-verity %s" % (path, m.size, m.seal["fsverity"]))
        for name, a in tensors(m):
            assert not a.flags.writeable and not a.flags.owndata  # a view, read-only
            print(name, a.dtype, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest())


if __name__ == "__main__":
    main()
