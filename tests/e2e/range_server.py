"""range_server.py - a loopback HTTP server for one directory that honours "Range: bytes=N-",
so download tools can resume. Usage: range_server.py DIR PORTFILE; it writes its port there."""
import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        path = self.translate_path(self.path)
        rng = self.headers.get("Range", "")
        if not rng.startswith("bytes=") or not os.path.isfile(path):
            return super().send_head()
        start = int(rng[6:].split("-")[0] or 0)
        size = os.path.getsize(path)
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return f

    def log_message(self, *args):
        pass


os.chdir(sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.handle_error = lambda request, address: None  # a killed client is no error here
with open(sys.argv[2] + ".tmp", "w") as out:
    out.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
