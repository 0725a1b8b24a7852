#!/usr/bin/python3
"""An HTTP/2 (h2c) origin built on python3-h2 that, on every connection, answers the first
N streams and then sends GOAWAY: later streams are never processed (RFC 9113 §6.8 says a
client may retry them elsewhere). Prints "PORT <n>"; runs until killed.
usage: h2_goaway_server.py N"""

import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events

LIMIT = int(sys.argv[1])
served = 0
lock = threading.Lock()


def serve(sock):
    global served
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    answered = 0
    last_ok = 0
    while True:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                sid = event.stream_id
                if answered >= LIMIT:
                    continue  # above the GOAWAY's last stream id: never processed
                answered += 1
                last_ok = sid
                with lock:
                    served += 1
                body = b"stream %d\n" % sid
                conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
                conn.send_data(sid, body, end_stream=True)
                if answered == LIMIT:
                    conn.close_connection(last_stream_id=last_ok)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    sock.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print("PORT %d" % s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
