#!/usr/bin/env python3
"""A collector stand-in for the upload tests: answers as told and records.

  receiver.py PORT_FILE LOG [--plan PLAN] [--save DIR] [--max-seconds S] [--tls CERT,KEY]

Listens on 127.0.0.1 (a free port, written to PORT_FILE) and answers every
POST with the next step of PLAN, a comma-separated list; the last step
repeats. A step is STATUS[:RETRY_AFTER] (e.g. 200, 503:1, 400) or "hang"
(read the request, never answer, keep the connection open). Error answers
carry a two-line text body, the first naming the status. Each request is appended to
LOG as one JSON line just before it is answered: time (unix s, float), path
(with query), content_type, content_encoding, authorization, x_test, bytes,
status (0 for hang). With --save, request bodies go to DIR/req-N.bin. With --tls
it speaks https with that certificate and key. The receiver exits by itself
after --max-seconds (default 120).
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time


def main():
    args = sys.argv[1:]
    port_file, log = args[0], args[1]
    opts = {"plan": "200", "save": None, "max-seconds": "120", "tls": None}
    i = 2
    while i < len(args):
        opts[args[i][2:]] = args[i + 1]
        i += 2
    plan = opts["plan"].split(",")
    lock = threading.Lock()
    state = {"n": 0}

    def record(entry):
        with lock:
            with open(log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else b""
            with lock:
                n = state["n"]
                state["n"] += 1
            step = plan[min(n, len(plan) - 1)]
            if opts["save"]:
                with open(os.path.join(opts["save"], "req-%d.bin" % n), "wb") as f:
                    f.write(body)
            entry = {"n": n, "time": time.time(), "path": self.path,
                     "content_type": self.headers.get("Content-Type", ""),
                     "content_encoding": self.headers.get("Content-Encoding", ""),
                     "authorization": self.headers.get("Authorization", ""),
                     "x_test": self.headers.get("X-Test", ""),
                     "bytes": len(body), "status": 0}
            if step == "hang":
                record(entry)
                time.sleep(float(opts["max-seconds"]))
                return
            status, _, retry_after = step.partition(":")
            status = int(status)
            entry["status"] = status
            record(entry)       # before answering: a kill in between makes a retry, not a loss
            text = b"" if status < 300 else ("status %d from the test receiver\nsecond line\n" % status).encode()
            self.send_response(status)
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
            self.wfile.flush()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if opts["tls"]:
        cert, key = opts["tls"].split(",")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    threading.Timer(float(opts["max-seconds"]), lambda: os._exit(0)).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
