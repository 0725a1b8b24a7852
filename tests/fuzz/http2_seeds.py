#!/usr/bin/python3
"""Writes the seed inputs of the http2_server fuzz target (tests/fuzz/http2_server_fuzz.cc)
into DIR: the conversations tests/integration/h2_probe.py has with a listener (requests for
each of the fake upstream's paths, bodies, trailers, CONTINUATION, padding, priorities,
resets, pings, settings, window updates, GOAWAY, and the protocol errors the probe checks),
plus HTTP/1.1 and h2c-upgrade openings for the detecting listener. Each file is one flags
byte (see the target) and the client's bytes. Usage: http2_seeds.py DIR"""

import os
import struct
import sys

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) \
        + payload


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def req(path="/", method="GET", extra=(), authority="svc"):
    return [(":method", method), (":scheme", "http"), (":authority", authority),
            (":path", path)] + list(extra)


def headers(sid, fields, end_stream=True, encoder=None, flags=0):
    block = (encoder or hpack.Encoder()).encode(fields)
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0) | flags, sid, block)


def start(*frames):
    return PREFACE + settings() + b"".join(frames)


def streams(requests, ids=None):
    """HEADERS frames of one connection (one HPACK encoder), streams 1, 3, 5, ..."""
    enc = hpack.Encoder()
    ids = ids or [2 * i + 1 for i in range(len(requests))]
    return [headers(sid, r, encoder=enc) for sid, r in zip(ids, requests)]


def seeds():
    post = req("/e", "POST", [("content-type", "application/grpc"), ("te", "trailers")])
    yield "get", start(headers(1, req("/")))
    yield "get-each-mode", start(*streams([req("/" + m) for m in "delbhpr"]))
    yield "post-echo", start(headers(1, req("/e", "POST"), False),
                             frame(DATA, 0, 1, b"hello "), frame(DATA, END_STREAM, 1, b"world"))
    yield "post-trailers", start(headers(1, post, False), frame(DATA, 0, 1, b"\0\0\0\0\0"),
                                 headers(1, [("grpc-timeout", "1S")]))
    yield "post-content-length-mismatch", start(
        headers(1, req("/d", "POST", [("content-length", "3")]), False),
        frame(DATA, END_STREAM, 1, b"toolong"))
    yield "big-window-update", start(headers(1, req("/b")),
                                     frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)),
                                     frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1 << 20)))
    yield "small-window", PREFACE + settings((4, 16), (5, 16384)) + headers(1, req("/b"))
    block = hpack.Encoder().encode(req("/continued", extra=[("x-long", "v" * 300)]))
    yield "continuation", start(frame(HEADERS, END_STREAM, 1, block[:20]),
                                frame(CONTINUATION, 0, 1, block[20:40]),
                                frame(CONTINUATION, END_HEADERS, 1, block[40:]))
    padded = hpack.Encoder().encode(req("/padded"))
    yield "padded", start(frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1,
                                b"\x04" + padded + b"\0" * 4))
    yield "padded-data", start(headers(1, req("/e", "POST"), False),
                               frame(DATA, PADDED | END_STREAM, 1, b"\x03abc\0\0\0"))
    prio = hpack.Encoder().encode(req("/prio"))
    yield "priority", start(frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1,
                                  struct.pack(">IB", 0, 15) + prio),
                            frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 200)))
    yield "priority-self", start(frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 16)))
    yield "rst-during-body", start(headers(1, req("/h", "POST"), False),
                                   frame(DATA, 0, 1, b"part"),
                                   frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
    yield "data-after-end", start(headers(1, req("/d")), frame(DATA, 0, 1, b"late"))
    yield "lower-stream-id", start(*streams([req("/a"), req("/b")], ids=[5, 3]))
    yield "ping-settings-goaway", start(frame(PING, 0, 0, b"12345678"),
                                        frame(SETTINGS, ACK, 0),
                                        settings((1, 0), (2, 0), (3, 1), (6, 100)),
                                        frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
    yield "bad-pseudo", start(headers(1, [(":method", "GET"), (":path", "rel"),
                                          (":scheme", "http"), (":status", "200")]))
    yield "uppercase-field", start(headers(1, req("/", extra=[("X-Upper", "1")])))
    yield "connection-field", start(headers(1, req("/", extra=[("connection", "close"),
                                                               ("transfer-encoding", "chunked")])))
    yield "connect", start(headers(1, [(":method", "CONNECT"), (":authority", "svc:443")], False),
                           frame(DATA, 0, 1, b"tunnel bytes"))
    yield "many-streams", start(*streams([req("/e")] * 40))
    yield "window-overflow", start(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fffffff)))
    yield "zero-window-update", start(headers(1, req("/h")),
                                      frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0)))
    yield "push-promise", start(frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2"))
    yield "unknown-frame", start(frame(0x42, 0xff, 1, b"opaque"), headers(1, req("/")))
    yield "oversized-frame", start(frame(DATA, 0, 1, b"x" * 20000))
    yield "bad-preface", b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings()


def detecting_seeds():
    yield "http1-get", b"GET /e HTTP/1.1\r\nHost: svc\r\n\r\n"
    yield "http1-post-chunked", (b"POST /e HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked"
                                 b"\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n")
    yield "http1-pipeline", (b"GET /d HTTP/1.1\r\nHost: svc\r\n\r\n"
                             b"GET /l HTTP/1.1\r\nHost: svc\r\n\r\n")
    yield "http1-paused", b"POST /p HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\n\r\nbody"
    settings_b64 = b"AAMAAABkAAQAAP__"
    yield "h2c-upgrade", (b"GET / HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings"
                          b"\r\nUpgrade: h2c\r\nHTTP2-Settings: " + settings_b64 + b"\r\n\r\n")
    yield "h2-prior-knowledge", start(headers(1, req("/e")))
    yield "tls-hello", b"\x16\x03\x01\x00\x05hello"


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        for flags, suffix in ((0x00, ""), (0x0a, "-cut")):  # all at once; 4-byte writes, EOF
            with open(os.path.join(out, "seed-" + name + suffix), "wb") as f:
                f.write(bytes([flags]) + data)
    for name, data in detecting_seeds():
        with open(os.path.join(out, "seed-auto-" + name), "wb") as f:
            f.write(bytes([0x03]) + data)


if __name__ == "__main__":
    main()
