#!/usr/bin/env python3
"""A backend for the `ancm` end-to-end tests that leaks module headers in its responses.

Listens on 127.0.0.1:$ASPNETCORE_PORT. Every request gets 200, body `leaky`, with the
response headers `MS-ASPNETCORE-TOKEN: <its token>`, `ms-aspnetcore-event: shutdown`,
`Ms-AspNetCore-Whatever: x` (which the front must remove) and `X-Kept: 1`; ANCM's shutdown
event (POST {app}/iisintegration with the token) gets 202, then the process exits 0.
"""
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ["ASPNETCORE_PORT"])
TOKEN = os.environ.get("ASPNETCORE_TOKEN", "")
APP = os.environ.get("ASPNETCORE_APPL_PATH", "/").rstrip("/")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if (self.command == "POST" and self.path.lower() == (APP + "/iisintegration").lower()
                and self.headers.get("MS-ASPNETCORE-TOKEN") == TOKEN):
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0)), daemon=True).start()
            return
        body = b"leaky"
        self.send_response(200)
        self.send_header("MS-ASPNETCORE-TOKEN", TOKEN)
        self.send_header("ms-aspnetcore-event", "shutdown")
        self.send_header("Ms-AspNetCore-Whatever", "x")
        self.send_header("X-Kept", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever()
