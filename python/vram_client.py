"""vram_client - map sealed files of a vram-residency mount into this process, without a copy.

A thin ctypes layer over libvram-client (no third-party dependency):

    import vram_client
    with vram_client.Client("/run/vram") as c:
        with c.map("llama/model.safetensors", verify=True) as m:
            m.size, m.seal                # bytes, the signed seal (a dict)
            m.buffer                      # host memory (mock): a read-only memoryview
            m.__cuda_array_interface__    # device memory (CUDA): for PyTorch, CuPy, Numba
            m.verify()                    # re-check on the device now; raises on failure
    vram_client.load("llama-3-8b/", "/run/vram/llama-3-8b")   # a whole model, in parallel

Arrays and tensors made over a mapping (numpy.frombuffer(m.buffer), torch.frombuffer,
torch.from_numpy of such an array, torch.as_tensor(m) on CUDA) keep its memory mapped after
close() or the end of the `with` block: the memory is unmapped, and the lease ended (so the
file may be removed or replaced), when the last of them is gone. The memory is read-only: a
store into it (through ctypes, or a tensor PyTorch warned was over a read-only buffer) kills
the process with SIGSEGV; copy first (bytes(m.buffer), tensor.clone()) to change bytes.

The library is found through $VRAM_CLIENT_LIB, then where cmake --install put it (beside this
module, its path), then, imported from a checkout (PYTHONPATH=CHECKOUT/python), in
CHECKOUT/build/lib (scripts/build.sh's), then the system's library path.
"""
import ctypes
import ctypes.util
import json
import os
import threading

__all__ = ["Client", "Mapping", "VramError", "load"]

HOST, CUDA = 1, 2
VERIFY = 1


class _Mapping(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_uint64), ("kind", ctypes.c_int),
                ("seal", ctypes.c_char_p), ("seal_len", ctypes.c_size_t),
                ("lease", ctypes.c_uint32), ("mapped", ctypes.c_uint64)]


class _Progress(ctypes.Structure):
    _fields_ = [("files_done", ctypes.c_uint64), ("files", ctypes.c_uint64),
                ("bytes_done", ctypes.c_uint64), ("bytes", ctypes.c_uint64),
                ("src", ctypes.c_char_p), ("dest", ctypes.c_char_p), ("size", ctypes.c_uint64)]


_PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Progress), ctypes.c_void_p)


def _umask():
    """The process's umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _load():
    # cmake --install writes the installed library's path beside the module; from a build
    # tree's layout (PREFIX/lib/python3.X/dist-packages/), the library is in PREFIX/lib/
    here = os.path.dirname(os.path.abspath(__file__))
    installed = None
    try:
        with open(os.path.join(here, "vram_client.library"), encoding="utf-8") as f:
            installed = f.read().strip()
    except OSError:
        pass
    # or, imported from a checkout (PYTHONPATH=CHECKOUT/python), scripts/build.sh's build/lib/
    candidates = [installed, os.path.join(here, "..", "..", "libvram-client.so.1"),
                  os.path.join(here, "..", "build", "lib", "libvram-client.so.1")]
    found = [c for c in candidates if c and os.path.exists(c)]
    name = os.environ.get("VRAM_CLIENT_LIB") or (found[0] if found else None) \
        or ctypes.util.find_library("vram-client") or "libvram-client.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.vr_client_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.vr_client_map.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint,
                                  ctypes.POINTER(ctypes.POINTER(_Mapping))]
    lib.vr_client_verify.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Mapping)]
    lib.vr_client_unmap.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Mapping)]
    lib.vr_client_import.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_uint64)]
    lib.vr_client_load.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint,
                                   _PROGRESS_FN, ctypes.c_void_p, ctypes.c_char_p,
                                   ctypes.c_size_t]
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
    """A refused or failed request: errno, the daemon's reason, and the path asked for."""


def _raise(ret, why, path=None):
    err = -ret
    text = os.strerror(err)
    if why and why != text:
        # the daemon's reason, with the errno's text once (not "Invalid argument: Invalid argument")
        text = why if text in why else "%s (%s)" % (text, why)
    if path is None:
        raise VramError(err, text)
    raise VramError(err, text, path)


class _Conn:
    """The library's connection: closed once the client is closed and no memory mapped through
    it is still in use by an array or tensor."""

    def __init__(self, handle):
        self.handle = handle
        self.regions = 0
        self.closing = False

    def error(self):
        return _library().vr_client_error(self.handle).decode(errors="replace")

    def settle(self):
        if self.closing and self.regions == 0 and self.handle:
            _library().vr_client_close(self.handle)
            self.handle = None


class _Region:
    """One mapping's memory. Every object that exposes it holds this (the Mapping until its
    close(), each ctypes array behind a memoryview it handed out, which the memoryview, a NumPy
    array or a tensor over it holds in turn): the memory is unmapped, and the lease ended, when
    the last holder is gone, never under a live view."""

    def __init__(self, conn, raw):
        self.conn, self.raw = conn, raw
        conn.regions += 1

    def __del__(self):
        conn, raw, self.raw = self.conn, self.raw, None
        if raw is None:
            return
        try:
            _library().vr_client_unmap(conn.handle, raw)
            conn.regions -= 1
            conn.settle()
        except Exception:  # pylint: disable=broad-except
            pass  # interpreter shutdown: the process's end unmaps


class Mapping:
    """A sealed file mapped read-only. After close() (or its client's close()) nothing new can
    be taken from it; arrays and tensors already made over it stay valid until they are gone."""

    def __init__(self, client, raw):
        self._client = client
        self._region = _Region(client._conn, raw)
        self._closed = False
        m = raw.contents
        self.size = m.size
        self.kind = "cuda" if m.kind == CUDA else "host"
        self.seal = json.loads(ctypes.string_at(m.seal, m.seal_len).decode())
        self._ptr = m.ptr or 0
        self._device_shared = False

    @property
    def ptr(self):
        """The first byte's address (host, or CUDA device address)."""
        self._alive()
        return self._ptr

    @property
    def buffer(self):
        """The bytes as a read-only memoryview over the mapping itself (host memory only); the
        memory stays mapped while it, or anything made over it, lives."""
        self._alive()
        if self.kind != "host":
            raise TypeError("device memory: use __cuda_array_interface__")
        if self.size == 0:
            return memoryview(b"")
        raw = (ctypes.c_ubyte * self.size).from_address(self._ptr)
        raw.vram_region = self._region  # the memory lives as long as this array
        return memoryview(raw).cast("B").toreadonly()

    def __buffer__(self, flags):  # Python 3.12+: the buffer protocol on the object itself
        return self.buffer

    @property
    def __cuda_array_interface__(self):
        """Version 3 of the interface, read-only bytes (device memory only). A consumer
        (torch.as_tensor, cupy.asarray) holds this object: its memory then stays mapped until
        the object itself is gone, even after close()."""
        self._alive()
        if self.kind != "cuda":
            raise AttributeError("host memory: use .buffer")
        self._device_shared = True
        return {"shape": (self.size,), "typestr": "|u1", "data": (self._ptr, True),
                "version": 3, "strides": None, "stream": None}

    def verify(self):
        """Re-checks the file's digest on the device now; raises VramError if it fails."""
        self._alive()
        conn = self._client._conn
        ret = _library().vr_client_verify(conn.handle, self._region.raw)
        if ret:
            _raise(ret, conn.error(), self.seal.get("path"))

    def close(self):
        """Ends this mapping: unmapped and the lease ended now (the file may then be removed or
        replaced), or, while arrays or tensors over it live, when the last of them is gone."""
        if self._closed:
            return
        self._closed = True
        self._client._maps.discard(self)
        if not self._device_shared:
            self._region = None  # unmapped here unless a view holds it

    def _alive(self):
        if self._closed:
            raise ValueError("mapping closed")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# vram_client.h's VR_CLIENT_DIRECT, or'd into the jobs
_DIRECT = 0x10000


def load(src, dest, jobs=0, progress=None, direct=False):
    """Loads SRC (a file, or a directory with everything below it) as DEST on a mount, sealed
    as cp -rL would (links in the source followed), up to JOBS files at once (0: one per two
    CPUs), largest first. A tree that does not fit in the mount's free device memory raises
    ENOSPC before anything is made; a failure partway, or Ctrl-C (KeyboardInterrupt, once the
    files in flight are in) before the last file is in, removes what the load made. PROGRESS, if given, is called after
    each file as progress(files_done, files, bytes_done, bytes, dest); an exception it raises
    stops the load the same way. DIRECT reads each source past the page cache (O_DIRECT) where
    its filesystem allows, for a model on disk not already cached. Returns the bytes loaded."""
    if not isinstance(jobs, int) or not 0 <= jobs < _DIRECT:
        raise ValueError("jobs: a number of files at once, 0 for one per two CPUs")
    done = [0]
    stop = []
    ret = [None]
    last = threading.Event()  # the last file is in: the load waits for ...
    seen = threading.Event()  # ... this thread to have taken any Ctrl-C that came meanwhile

    def step(p, _arg):
        q = p.contents
        done[0] = q.bytes_done
        if progress and not stop:
            try:
                progress(q.files_done, q.files, q.bytes_done, q.bytes,
                         os.fsdecode(q.dest) if q.dest else None)
            except BaseException as e:  # cannot cross the C library: stop, raise it after
                stop.append(e)
        if q.files_done == q.files and not stop:
            # Python runs signal handlers on the main thread only: a Ctrl-C that came while
            # the last file loaded must reach it before the load is done, or it would be
            # raised over a tree left loaded
            last.set()
            seen.wait(5)
        return 1 if stop else 0

    err = ctypes.create_string_buffer(8192)
    fn = _PROGRESS_FN(step)

    finished = threading.Event()

    def run():
        try:
            ret[0] = _library().vr_client_load(os.fsencode(src), os.fsencode(dest),
                                               jobs | (_DIRECT if direct else 0), fn,
                                               None, err, len(err))
        finally:
            finished.set()

    # the load runs on a thread of its own, so Ctrl-C reaches this one while it goes on. It
    # is waited for through FINISHED, not Thread.join: a KeyboardInterrupt inside join marks
    # a running thread as ended on Python 3.11 (its fix for bpo-45274), and a second join
    # would then return at once, with the load still going
    t = threading.Thread(target=run, name="vram_client.load")
    t.start()
    try:
        while not finished.wait(0.05):
            if last.is_set():
                seen.set()  # a pending Ctrl-C was raised here, before this line
    except BaseException as e:
        stop.append(e)
        seen.set()
        finished.wait()
        raise
    if stop:
        raise stop[0]
    if ret[0]:
        _raise(ret[0], err.value.decode(errors="replace"), dest)
    return done[0]


class Client:
    """A connection to the daemon of the mount that holds PATH."""

    def __init__(self, path):
        h = ctypes.c_void_p()
        ret = _library().vr_client_connect(os.fsencode(os.path.abspath(path)), ctypes.byref(h))
        if ret:
            _raise(ret, "no vram-residency socket for this path", path)
        self._conn = _Conn(h.value)
        self._maps = set()

    def _open(self):
        if self._conn.closing:
            raise ValueError("client closed")
        return self._conn.handle

    def map(self, path, verify=False):
        """Maps sealed file PATH (absolute, or relative to the mount point) read-only."""
        raw = ctypes.POINTER(_Mapping)()
        ret = _library().vr_client_map(self._open(), os.fsencode(path),
                                       VERIFY if verify else 0, ctypes.byref(raw))
        if ret:
            _raise(ret, self._conn.error(), path)
        m = Mapping(self, raw)
        self._maps.add(m)
        return m

    def load(self, src, dest, mode=None):
        """Imports file SRC into DEST (absolute, or relative to the mount point), sealed as cp
        would; returns the bytes loaded."""
        handle = self._open()
        got = ctypes.c_uint64()
        fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if mode is None:
                mode = os.fstat(fd).st_mode & 0o7777 & ~_umask()
            ret = _library().vr_client_import(handle, fd, os.fsencode(dest), mode,
                                              ctypes.byref(got))
        finally:
            os.close(fd)
        if ret:
            _raise(ret, self._conn.error(), dest)
        return got.value

    def close(self):
        """Closes every mapping made through this client and disconnects: at once, or, for
        memory that arrays or tensors still use, when the last of them is gone."""
        if self._conn.closing:
            return
        self._conn.closing = True
        for m in list(self._maps):
            m.close()
        self._conn.settle()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
