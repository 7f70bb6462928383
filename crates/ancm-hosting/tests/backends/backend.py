"""A python3 backend for ancm-hosting's tests: an ASP.NET Core app as far as ANCM can tell.

Listens on 127.0.0.1:$ASPNETCORE_PORT, answers GET /env with the variables it received and
POST {ASPNETCORE_APPL_PATH}/iisintegration (MS-ASPNETCORE-EVENT: shutdown + the token)
with 202, then exits.
"""
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMES = [
    "ASPNETCORE_PORT",
    "ASPNETCORE_TOKEN",
    "ASPNETCORE_APPL_PATH",
    "ASPNETCORE_IIS_HTTPAUTH",
    "ASPNETCORE_IIS_WEBSOCKETS_SUPPORTED",
    "ASPNETCORE_HOSTINGSTARTUPASSEMBLIES",
    "ANCM_TEST_VALUE",
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/env":
            lines = ["PID=%d" % os.getpid()]
            lines += ["%s=%s" % (n, os.environ[n]) for n in NAMES if n in os.environ]
            lines.append("CWD=" + os.getcwd())
            token_ok = self.headers.get("MS-ASPNETCORE-TOKEN") == os.environ.get("ASPNETCORE_TOKEN")
            lines.append("TOKEN_HEADER_OK=" + ("true" if token_ok else "false"))
            self.reply(200, "\n".join(lines) + "\n")
        else:
            self.reply(200, "python pid %d" % os.getpid())

    def do_POST(self):
        appl = os.environ.get("ASPNETCORE_APPL_PATH", "/")
        want = "/iisintegration" if appl == "/" else appl + "/iisintegration"
        ok = (
            self.path == want
            and self.headers.get("MS-ASPNETCORE-EVENT") == "shutdown"
            and self.headers.get("MS-ASPNETCORE-TOKEN") == os.environ.get("ASPNETCORE_TOKEN")
        )
        if ok:
            self.reply(202, "")
            print("python backend: shutdown accepted", flush=True)
            threading.Thread(target=self.server.shutdown, daemon=True).start()
        else:
            self.reply(404, "no")


def main():
    port = int(os.environ["ASPNETCORE_PORT"])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("python backend listening on %d" % port, flush=True)
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
