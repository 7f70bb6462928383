#!/usr/bin/env python3
"""A backend for the `ancm` end-to-end tests, started by the gateway from a web.config.

Listens on 127.0.0.1:$ASPNETCORE_PORT. Routes:
  POST {app}/iisintegration + MS-ASPNETCORE-EVENT: shutdown + the token -> 202, then exits 0
  /crash      -> exits at once (status 3) without answering
  /slow?ms=N  -> sleeps N ms, then answers like /
  /print?lines=N&width=W -> writes N numbered lines of W more characters to stdout, then
                answers like /
  /alloc?mb=N -> keeps N more MiB of memory in use (written, so resident), then answers
                like /
  /ws         -> WebSocket echo (RFC 6455, unmasked server frames)
  a file `hang-<pid>` in the working directory (the site folder) -> every request, the
                shutdown message included, is accepted and never answered: a hung backend
  anything    -> 200 JSON {pid, method, path, headers: [[name, value], ...], env: {...}}
"""
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = int(os.environ["ASPNETCORE_PORT"])
TOKEN = os.environ.get("ASPNETCORE_TOKEN", "")
APP = os.environ.get("ASPNETCORE_APPL_PATH", "/").rstrip("/")
HELD = []
ENV_KEYS = [k for k in os.environ if k.startswith("ASPNETCORE_") or k.startswith("TEST_")]
if os.environ.get("TEST_IGNORE_SIGINT") == "1":
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body are two writes: without TCP_NODELAY the body waits for the
    # gateway's delayed ACK (40 ms a response on Linux).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def send_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        if os.path.exists(f"hang-{os.getpid()}"):
            time.sleep(3600)
        url = urlsplit(self.path)
        body = self.read_body()
        if (self.command == "POST" and url.path.lower() == (APP + "/iisintegration").lower()
                and (self.headers.get("MS-ASPNETCORE-EVENT") or "").lower() == "shutdown"
                and self.headers.get("MS-ASPNETCORE-TOKEN") == TOKEN):
            if os.environ.get("TEST_IGNORE_SHUTDOWN_EVENT") == "1":
                self.send_json({"ignored": True}, 404)
                return
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0)), daemon=True).start()
            return
        if url.path.endswith("/crash"):
            os._exit(3)
        if url.path.endswith("/ws") and (self.headers.get("Upgrade") or "").lower() == "websocket":
            return self.websocket()
        if url.path.endswith("/print"):
            query = parse_qs(url.query)
            width = int(query.get("width", ["40"])[0])
            for i in range(int(query.get("lines", ["1"])[0])):
                print(f"line {i:05d} " + "x" * width, flush=True)
        if url.path.endswith("/alloc"):
            mb = int(parse_qs(url.query).get("mb", ["1"])[0])
            HELD.append(b"x" * (mb * 1024 * 1024))
        if url.path.endswith("/slow"):
            ms = int(parse_qs(url.query).get("ms", ["500"])[0])
            time.sleep(ms / 1000)
        self.send_json({
            "pid": os.getpid(),
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "env": {k: os.environ[k] for k in ENV_KEYS},
            "body_len": len(body),
        })

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        rfile, wfile = self.rfile, self.wfile
        while True:
            head = rfile.read(2)
            if len(head) < 2:
                break
            opcode = head[0] & 0x0F
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", rfile.read(8))[0]
            mask = rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(rfile.read(length)))
            out = bytes([0x80 | opcode])
            if len(data) < 126:
                out += bytes([len(data)])
            elif len(data) < 65536:
                out += bytes([126]) + struct.pack("!H", len(data))
            else:
                out += bytes([127]) + struct.pack("!Q", len(data))
            wfile.write(out + data)
            wfile.flush()
            if opcode == 0x8:  # close: echoed, then done
                break
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET


if __name__ == "__main__":
    print(f"echo_backend pid {os.getpid()} on 127.0.0.1:{PORT}", flush=True)
    Server(("127.0.0.1", PORT), Handler).serve_forever()
