"""An HTTP server for the interception test: on each HOST:PORT given, answers every request
with one line naming the port it was reached on and the Host and Via headers it got, so the
test can tell where a request landed and whether Tether carried it."""
import http.server
import socket
import sys
import threading


def handler_for(port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = "port=%d host=%s via=%s\n" % (
                port, self.headers.get("Host", ""), self.headers.get("Via", ""))
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


servers = []
for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    host = host.strip("[]")

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    s = Server((host, int(port)), handler_for(int(port)))
    servers.append(s)
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
