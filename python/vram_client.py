"""vram_client - map sealed files of a vram-residency mount into this process, without a copy.

A thin ctypes layer over libvram-client (no third-party dependency):

    import vram_client
    with vram_client.Client("/run/vram") as c:
        with c.map("llama/model.safetensors", verify=True) as m:
            m.size, m.seal                # bytes, the signed seal (a dict)
            m.buffer                      # host memory (mock): a read-only memoryview
            m.__cuda_array_interface__    # device memory (CUDA): for PyTorch, CuPy, Numba
            m.verify()                    # re-check on the device now; raises on failure

The library is found through $VRAM_CLIENT_LIB, then the system's library path.
"""
import ctypes
import ctypes.util
import json
import os

__all__ = ["Client", "Mapping", "VramError"]

HOST, CUDA = 1, 2
VERIFY = 1


class _Mapping(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_uint64), ("kind", ctypes.c_int),
                ("seal", ctypes.c_char_p), ("seal_len", ctypes.c_size_t),
                ("lease", ctypes.c_uint32), ("mapped", ctypes.c_uint64)]


def _load():
    # installed by cmake --install: PREFIX/lib/python3/dist-packages/ beside PREFIX/lib/
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                          "libvram-client.so.1")
    name = os.environ.get("VRAM_CLIENT_LIB") or (beside if os.path.exists(beside) else None) \
        or ctypes.util.find_library("vram-client") or "libvram-client.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.vr_client_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.vr_client_map.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint,
                                  ctypes.POINTER(ctypes.POINTER(_Mapping))]
    lib.vr_client_verify.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Mapping)]
    lib.vr_client_unmap.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Mapping)]
    lib.vr_client_import.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_uint64)]
    lib.vr_client_error.argtypes = [ctypes.c_void_p]
    lib.vr_client_error.restype = ctypes.c_char_p
    lib.vr_client_close.argtypes = [ctypes.c_void_p]
    lib.vr_client_close.restype = None
    return lib


_lib = None


def _library():
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


class VramError(OSError):
    """A refused or failed request: errno and the daemon's reason."""


def _raise(ret, why):
    err = -ret
    raise VramError(err, "%s: %s" % (os.strerror(err), why))


class Mapping:
    """A sealed file mapped read-only; valid until close() (or its client's close())."""

    def __init__(self, client, raw):
        self._client, self._raw = client, raw
        m = raw.contents
        self.size = m.size
        self.kind = "cuda" if m.kind == CUDA else "host"
        self.seal = json.loads(ctypes.string_at(m.seal, m.seal_len).decode())
        self._ptr = m.ptr or 0

    @property
    def ptr(self):
        """The first byte's address (host, or CUDA device address)."""
        self._alive()
        return self._ptr

    @property
    def buffer(self):
        """The bytes as a read-only memoryview over the mapping itself (host memory only)."""
        self._alive()
        if self.kind != "host":
            raise TypeError("device memory: use __cuda_array_interface__")
        if self.size == 0:
            return memoryview(b"")
        raw = (ctypes.c_ubyte * self.size).from_address(self._ptr)
        return memoryview(raw).cast("B").toreadonly()

    def __buffer__(self, flags):  # Python 3.12+: the buffer protocol on the object itself
        return self.buffer

    @property
    def __cuda_array_interface__(self):
        """Version 3 of the interface, read-only bytes (device memory only)."""
        self._alive()
        if self.kind != "cuda":
            raise AttributeError("host memory: use .buffer")
        return {"shape": (self.size,), "typestr": "|u1", "data": (self._ptr, True),
                "version": 3, "strides": None, "stream": None}

    def verify(self):
        """Re-checks the file's digest on the device now; raises VramError if it fails."""
        self._alive()
        c = self._client
        ret = _library().vr_client_verify(c._c, self._raw)
        if ret:
            _raise(ret, _library().vr_client_error(c._c).decode(errors="replace"))

    def close(self):
        """Unmaps and ends the lease (the file may then be removed or replaced)."""
        if self._raw is not None and self._client._c:
            self._client._maps.discard(self)
            _library().vr_client_unmap(self._client._c, self._raw)
        self._raw = None

    def _alive(self):
        if self._raw is None or not self._client._c:
            raise ValueError("mapping closed")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client:
    """A connection to the daemon of the mount that holds PATH."""

    def __init__(self, path):
        h = ctypes.c_void_p()
        ret = _library().vr_client_connect(os.fsencode(os.path.abspath(path)), ctypes.byref(h))
        if ret:
            _raise(ret, "no vram-residency socket for %s" % path)
        self._c = h.value
        self._maps = set()

    def map(self, path, verify=False):
        """Maps sealed file PATH (absolute, or relative to the mount point) read-only."""
        raw = ctypes.POINTER(_Mapping)()
        ret = _library().vr_client_map(self._c, os.fsencode(path), VERIFY if verify else 0,
                                       ctypes.byref(raw))
        if ret:
            _raise(ret, _library().vr_client_error(self._c).decode(errors="replace"))
        m = Mapping(self, raw)
        self._maps.add(m)
        return m

    def load(self, src, dest, mode=None):
        """Imports file SRC into DEST (absolute, or relative to the mount point), sealed as cp
        would; returns the bytes loaded."""
        got = ctypes.c_uint64()
        fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if mode is None:
                umask = os.umask(0)
                os.umask(umask)
                mode = os.fstat(fd).st_mode & 0o7777 & ~umask
            ret = _library().vr_client_import(self._c, fd, os.fsencode(dest), mode,
                                              ctypes.byref(got))
        finally:
            os.close(fd)
        if ret:
            _raise(ret, _library().vr_client_error(self._c).decode(errors="replace"))
        return got.value

    def close(self):
        """Unmaps everything mapped through this client and disconnects."""
        if self._c:
            for m in list(self._maps):
                m._raw = None
            _library().vr_client_close(self._c)
            self._c = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
