#!/usr/bin/python3
"""Frame-level HTTP/2 checks against a live Tether listener (RFC 9113 conformance and the
abuse protections). Usage: h2_probe.py [tls:|h2:]PORT SCENARIO [HOST]; with "tls:" every
connection is h2 over TLS (ALPN, the certificate not checked). Prints one line per check,
"PASS name" or "FAIL name: why", and exits 1 if any check failed.

Frames are built by hand (hyperframe would refuse to build the malformed ones); header
blocks are HPACK-encoded with the hpack module that python3-h2 depends on."""

import socket
import ssl
import struct
import sys
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM = range(12)

TLS = sys.argv[1].startswith("tls:")
# "h2:PORT": a plaintext listener whose protocol is fixed to HTTP/2 (no sniffing). Over TLS
# ALPN h2 fixes it too. Only a bare port number is a listener that tells HTTP/1.1 apart.
FIXED_H2 = TLS or sys.argv[1].startswith("h2:")
PORT = int(sys.argv[1].split(":")[-1])
HOST = sys.argv[3] if len(sys.argv) > 3 else "up"
failures = 0


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) \
        + payload


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def block(headers, encoder=None):
    return (encoder or hpack.Encoder()).encode(headers)


def request_headers(path="/echo", method="GET", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", HOST), (":path", path)] + \
        list(extra)


class Conn:
    def __init__(self, handshake=True):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        if TLS:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            self.s = ctx.wrap_socket(self.s, server_hostname="localhost")
            if self.s.selected_alpn_protocol() != "h2":
                raise SystemExit("ALPN did not select h2")
        self.buf = b""
        self.closed = False
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        if handshake:
            self.send(PREFACE + settings())

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def frames(self, timeout=3.0):
        """Yields (type, flags, stream, payload) until the peer closes or `timeout` passes."""
        end = time.time() + timeout
        while True:
            while len(self.buf) >= 9:
                length = struct.unpack(">I", b"\0" + self.buf[:3])[0]
                if len(self.buf) < 9 + length:
                    break
                ftype, flags = self.buf[3], self.buf[4]
                sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
                payload = self.buf[9:9 + length]
                self.buf = self.buf[9 + length:]
                yield ftype, flags, sid, payload
            left = end - time.time()
            if left <= 0 or self.closed:
                return
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return
            self.buf += chunk

    def wait_for(self, pred, timeout=3.0):
        for f in self.frames(timeout):
            if pred(f):
                return f
        return None

    def goaway(self, timeout=3.0):
        """The error code of the GOAWAY the server sends (None if none came)."""
        f = self.wait_for(lambda f: f[0] == GOAWAY, timeout)
        return struct.unpack(">I", f[3][4:8])[0] if f else None

    def stream_error(self, sid, timeout=3.0):
        """The RST_STREAM code for `sid`, or ('goaway', code) for a connection error."""
        for f in self.frames(timeout):
            if f[0] == RST_STREAM and f[2] == sid:
                return struct.unpack(">I", f[3])[0]
            if f[0] == GOAWAY:
                return ("goaway", struct.unpack(">I", f[3][4:8])[0])
        return None

    def response(self, sid, timeout=5.0):
        """(headers, body, trailers) of stream `sid`'s response."""
        headers, body, trailers = None, b"", None
        for ftype, flags, fsid, payload in self.frames(timeout):
            if fsid != sid:
                if ftype == HEADERS:
                    self.dec.decode(payload)
                continue
            if ftype == HEADERS:
                decoded = dict(self.dec.decode(payload))
                if headers is None:
                    headers = decoded
                else:
                    trailers = decoded
            elif ftype == DATA:
                body += payload
            elif ftype == RST_STREAM:
                return headers, body, ("rst", struct.unpack(">I", payload)[0])
            if flags & END_STREAM and ftype in (HEADERS, DATA):
                return headers, body, trailers
        return headers, body, trailers

    def alive(self):
        """The connection still answers a PING."""
        if not self.send(frame(PING, 0, 0, b"alive!!!")):
            return False
        return self.wait_for(lambda f: f[0] == PING and f[1] & ACK and f[3] == b"alive!!!",
                             2.0) is not None

    def close(self):
        self.s.close()


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS " + name)
    else:
        failures += 1
        print("FAIL " + name + (": " + str(why) if why else ""))


def expect_connection_error(name, payload, code, handshake=True):
    """GOAWAY with `code`, then the connection closes (§5.4.1)."""
    c = Conn(handshake)
    c.send(payload)
    got = c.goaway()
    if got == code:
        for _ in c.frames(2.0):
            pass
    check(name, got == code and c.closed,
          "GOAWAY code %r, expected %d; closed: %r" % (got, code, c.closed))
    c.close()


def expect_stream_error(name, payload, sid, codes):
    c = Conn()
    c.send(payload)
    got = c.stream_error(sid)
    ok = got in codes or (isinstance(got, tuple) and got[1] in codes)
    check(name, ok, "got %r, expected one of %r" % (got, codes))
    c.close()


def get(sid, path="/echo", end_stream=True, enc=None, method="GET"):
    """A request HEADERS frame for stream `sid`."""
    return frame(HEADERS, (END_STREAM if end_stream else 0) | END_HEADERS, sid,
                 block(request_headers(path, method), enc))


def first_data(c, sid, timeout=3.0):
    """The first DATA frame of stream `sid` (None on a reset, GOAWAY or timeout)."""
    f = c.wait_for(lambda f: f[0] in (DATA, RST_STREAM, GOAWAY) and f[2] in (0, sid), timeout)
    return f[3] if f is not None and f[0] == DATA else None


def stream_states():
    """§5.1: frames on streams the client already closed. nghttp2 forgets closed streams,
    so Tether answers these itself."""
    rst = frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL))
    more = frame(CONTINUATION, END_HEADERS, 1, block([("x-more", "1")]))
    for name, payload, codes in [
        ("half-closed (remote): CONTINUATION", get(1, "/slow/500") + more,
         (STREAM_CLOSED, PROTOCOL_ERROR)),
        ("closed by the client's RST_STREAM: DATA",
         get(1, "/hang", False, method="POST") + rst + frame(DATA, END_STREAM, 1, b"test"),
         (STREAM_CLOSED,)),
        ("closed by the client's RST_STREAM: HEADERS",
         get(1, "/hang", False, method="POST") + rst + get(1), (STREAM_CLOSED,)),
        ("closed by the client's RST_STREAM: CONTINUATION",
         get(1, "/hang", False, method="POST") + rst + more, (STREAM_CLOSED, PROTOCOL_ERROR)),
    ]:
        expect_stream_error(name, payload, 1, codes)
    # After END_STREAM both ways: any DATA or HEADERS is a connection error STREAM_CLOSED.
    for name, extra, codes in [("DATA", frame(DATA, END_STREAM, 1, b"test"), (STREAM_CLOSED,)),
                               ("HEADERS", None, (STREAM_CLOSED,)),
                               ("CONTINUATION", more, (STREAM_CLOSED, PROTOCOL_ERROR))]:
        c = Conn()
        c.send(get(1, enc=c.enc))
        h, _, _ = c.response(1)
        c.send(extra if extra else get(1, enc=c.enc))
        got = c.goaway()
        check("closed: " + name, h is not None and got in codes, (h, got))
        c.close()
    # Frames a stream may still get: PRIORITY in any state (ignored, §5.3.2), WINDOW_UPDATE
    # and RST_STREAM when half-closed (remote).
    prio = frame(PRIORITY, 0, 3, struct.pack(">IB", 0x80000001, 255))
    c = Conn(handshake=False)
    c.send(PREFACE + settings((4, 0)) + prio + get(1, "/bytes/100", enc=c.enc) +
           frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)) +
           frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1)))
    data = first_data(c, 1)
    check("PRIORITY on idle and half-closed streams, WINDOW_UPDATE when half-closed",
          data is not None and len(data) == 1, data)
    c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)) + prio)
    check("RST_STREAM when half-closed, PRIORITY when closed", c.alive())
    c.close()
    # A stream the server ended (its route timed out: 504) while the request was still
    # coming: the client's late frames are ignored (§5.4.2).
    c = Conn()
    c.send(get(1, "/hang", False, c.enc, "POST"))
    c.response(1)
    c.send(frame(DATA, 0, 1, b"late") + get(3, "/status/200", enc=c.enc))
    h, _, _ = c.response(3)
    check("late DATA on a stream the server closed is ignored",
          h is not None and h.get(":status") == "200", h)
    c.close()


def concurrency_limit():
    """§5.1.2: a stream over SETTINGS_MAX_CONCURRENT_STREAMS is refused (REFUSED_STREAM,
    retryable); the connection and the streams already open carry on."""
    c = Conn()
    first = next(c.frames(), None)
    limit = None
    if first is not None and first[0] == SETTINGS:
        for at in range(0, len(first[3]) - 5, 6):
            key, value = struct.unpack(">HI", first[3][at:at + 6])
            if key == 3:
                limit = value
    check("SETTINGS_MAX_CONCURRENT_STREAMS announced", limit is not None and limit <= 1000, limit)
    if limit is None or limit > 1000:
        c.close()
        return
    batch = b"".join(get(1 + 2 * i, "/slow/500", enc=c.enc) for i in range(limit))
    over = 1 + 2 * limit
    c.send(batch + get(over, "/status/200", enc=c.enc))
    got = c.stream_error(over, 3.0)
    check("a stream over the limit is refused with REFUSED_STREAM", got == REFUSED_STREAM, got)
    check("the connection lives on after the refusal", c.alive())
    h, _, _ = c.response(1, 5.0)
    check("streams within the limit complete", h is not None and h.get(":status") == "200", h)
    c.close()


def flow_control():
    """§6.5.3, §6.9: the client's windows bound what Tether sends."""
    for name, prefs in [("SETTINGS_INITIAL_WINDOW_SIZE=1: DATA of 1 octet", [(4, 1)]),
                        ("the last of several INITIAL_WINDOW_SIZE values wins",
                         [(4, 100), (4, 1)])]:
        c = Conn(handshake=False)
        c.send(PREFACE + settings(*prefs) + get(1, "/bytes/100", enc=c.enc))
        data = first_data(c, 1)
        check(name, data is not None and len(data) == 1, data)
        c.close()
    c = Conn(handshake=False)
    c.send(PREFACE + settings((4, 0)) + get(1, "/bytes/100", enc=c.enc))
    time.sleep(0.3)
    c.send(settings((4, 1)))
    data = first_data(c, 1)
    check("INITIAL_WINDOW_SIZE raised after HEADERS", data is not None and len(data) == 1, data)
    c.close()
    c = Conn(handshake=False)
    c.send(PREFACE + settings((4, 3)) + get(1, "/bytes/100", enc=c.enc))
    first = first_data(c, 1)
    c.send(settings((4, 2)) + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 2)))
    data = first_data(c, 1, 1.5)  # the window went to -1, then +2: one octet
    check("a window made negative by SETTINGS", first is not None and len(first) == 3 and
          data is not None and len(data) == 1, (first, data))
    c.close()
    expect_stream_error("stream window past 2^31-1",
                        get(1, "/hang", False, method="POST") +
                        frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 2**31 - 1)), 1,
                        (FLOW_CONTROL_ERROR,))


def conformance():
    # §3.4: the server preface is a SETTINGS frame; our SETTINGS get an ACK.
    c = Conn()
    first = next(c.frames(), None)
    check("server preface is SETTINGS", first is not None and first[0] == SETTINGS and
          not first[1] & ACK, first)
    check("SETTINGS acknowledged",
          c.wait_for(lambda f: f[0] == SETTINGS and f[1] & ACK) is not None)
    c.send(get(1, "/status/200", enc=c.enc))
    h, body, _ = c.response(1)
    check("GET answered", h is not None and h.get(":status") == "200", h)
    c.close()

    # §3.4: an invalid preface is a connection error (GOAWAY PROTOCOL_ERROR) where the
    # listener is HTTP/2 only; where HTTP/1.1 is told apart it is HTTP/1.1's 400. Closed.
    c = Conn(handshake=False)
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    if FIXED_H2:
        got = c.goaway()
        for _ in c.frames(2.0):
            pass
        check("invalid preface: GOAWAY PROTOCOL_ERROR and closed",
              got == PROTOCOL_ERROR and c.closed, got)
    else:
        data = b"".join(iter(lambda: c.s.recv(4096), b""))
        check("invalid preface rejected and closed", data.startswith(b"HTTP/1.1 400"), data[:40])
    c.close()

    # §6.5: SETTINGS rules.
    expect_connection_error("SETTINGS ACK with payload", frame(SETTINGS, ACK, 0, b"\0" * 6),
                            FRAME_SIZE_ERROR)
    expect_connection_error("SETTINGS on a stream", frame(SETTINGS, 0, 1), PROTOCOL_ERROR)
    expect_connection_error("SETTINGS length not a multiple of 6", frame(SETTINGS, 0, 0, b"\0" * 3),
                            FRAME_SIZE_ERROR)
    expect_connection_error("SETTINGS_ENABLE_PUSH=2", settings((2, 2)), PROTOCOL_ERROR)
    expect_connection_error("SETTINGS_INITIAL_WINDOW_SIZE too large", settings((4, 2**31)),
                            FLOW_CONTROL_ERROR)
    expect_connection_error("SETTINGS_MAX_FRAME_SIZE too small", settings((5, 16383)),
                            PROTOCOL_ERROR)
    expect_connection_error("SETTINGS_MAX_FRAME_SIZE too large", settings((5, 2**24)),
                            PROTOCOL_ERROR)
    c = Conn()
    c.send(settings((0xFF, 1)))  # unknown settings are ignored
    check("unknown SETTINGS ignored", c.alive())
    c.close()

    # §6.7: PING.
    c = Conn()
    c.send(frame(PING, 0, 0, b"12345678"))
    check("PING answered with the same payload",
          c.wait_for(lambda f: f[0] == PING and f[1] & ACK and f[3] == b"12345678") is not None)
    c.close()
    expect_connection_error("PING on a stream", frame(PING, 0, 1, b"12345678"), PROTOCOL_ERROR)
    expect_connection_error("PING of length 6", frame(PING, 0, 0, b"123456"), FRAME_SIZE_ERROR)

    # §4.1, §5.5: unknown frame types and flags are ignored.
    c = Conn()
    c.send(frame(0x20, 0xFF, 0, b"whatever"))
    check("unknown frame type ignored", c.alive())
    c.close()

    # §6.1: DATA.
    expect_connection_error("DATA on stream 0", frame(DATA, 0, 0, b"x"), PROTOCOL_ERROR)
    expect_connection_error("DATA on an idle stream", frame(DATA, 0, 1, b"x"), PROTOCOL_ERROR)
    expect_connection_error("DATA with pad length past the payload",
                            frame(HEADERS, END_HEADERS, 1,
                                  block(request_headers("/echo", "POST"))) +
                            frame(DATA, PADDED, 1, b"\x05ab"), PROTOCOL_ERROR)

    # §4.2: frame size.
    enc = hpack.Encoder()
    expect_connection_error("DATA larger than SETTINGS_MAX_FRAME_SIZE",
                            frame(HEADERS, END_HEADERS, 1,
                                  block(request_headers("/echo", "POST"), enc)) +
                            frame(DATA, 0, 1, b"x" * 16385), FRAME_SIZE_ERROR)

    # §5.1.1: stream identifiers.
    expect_connection_error("even stream id from a client",
                            frame(HEADERS, END_STREAM | END_HEADERS, 2, block(request_headers())),
                            PROTOCOL_ERROR)
    c = Conn()
    c.send(get(5, "/status/200", enc=c.enc))
    c.response(5)
    c.send(get(3, "/status/200", enc=c.enc))
    got = c.goaway()
    check("stream id lower than a previous one", got == PROTOCOL_ERROR, got)
    c.close()

    # §5.1: stream states.
    expect_connection_error("RST_STREAM on an idle stream", frame(RST_STREAM, 0, 1, b"\0\0\0\x08"),
                            PROTOCOL_ERROR)
    expect_connection_error("WINDOW_UPDATE on an idle stream",
                            frame(WINDOW_UPDATE, 0, 1, b"\0\0\0\x01"), PROTOCOL_ERROR)
    enc = hpack.Encoder()
    expect_stream_error("HEADERS on a half-closed (remote) stream",
                        frame(HEADERS, END_STREAM | END_HEADERS, 1,
                              block(request_headers("/slow/500"), enc)) +
                        frame(HEADERS, END_HEADERS, 1, block(request_headers(), enc)),
                        1, (STREAM_CLOSED,))
    expect_connection_error("CONTINUATION without HEADERS", frame(CONTINUATION, END_HEADERS, 1,
                                                                  block(request_headers())),
                            PROTOCOL_ERROR)
    expect_connection_error("HEADERS interrupted by another frame",
                            frame(HEADERS, 0, 1, block(request_headers())) +
                            frame(PING, 0, 0, b"12345678"), PROTOCOL_ERROR)
    expect_connection_error("RST_STREAM of length 3", frame(HEADERS, END_HEADERS, 1,
                                                            block(request_headers())) +
                            frame(RST_STREAM, 0, 1, b"\0\0\0"), FRAME_SIZE_ERROR)
    expect_connection_error("PRIORITY of length 4", frame(PRIORITY, 0, 1, b"\0\0\0\0"),
                            FRAME_SIZE_ERROR)
    expect_connection_error("PUSH_PROMISE from a client",
                            frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\x02"), PROTOCOL_ERROR)

    # §5.3.1: a stream cannot depend on itself.
    expect_stream_error("HEADERS depending on itself",
                        frame(HEADERS, END_STREAM | END_HEADERS | PRIORITY_FLAG, 1,
                              struct.pack(">IB", 1, 15) + block(request_headers())),
                        1, (PROTOCOL_ERROR,))
    expect_stream_error("PRIORITY depending on itself",
                        frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 15)), 1, (PROTOCOL_ERROR,))

    # §4.2: a HEADERS frame over SETTINGS_MAX_FRAME_SIZE (incompressible value).
    expect_connection_error("HEADERS larger than SETTINGS_MAX_FRAME_SIZE",
                            frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                  block(request_headers(extra=[("x-a", "~" * 15000)]))),
                            FRAME_SIZE_ERROR)

    # §6.9: flow control.
    c = Conn()
    c.send(frame(HEADERS, END_HEADERS, 1, block(request_headers("/hang", "POST"), c.enc)) +
           b"".join(frame(DATA, 0, 1, b"x" * 16384) for _ in range(66)))
    got = c.stream_error(1)
    check("DATA beyond the stream window (1 MiB)",
          got in (FLOW_CONTROL_ERROR, ("goaway", FLOW_CONTROL_ERROR)), got)
    c.close()
    expect_connection_error("WINDOW_UPDATE of 0 on the connection",
                            frame(WINDOW_UPDATE, 0, 0, b"\0\0\0\0"), PROTOCOL_ERROR)
    expect_stream_error("WINDOW_UPDATE of 0 on a stream",
                        frame(HEADERS, END_HEADERS, 1, block(request_headers("/echo", "POST"))) +
                        frame(WINDOW_UPDATE, 0, 1, b"\0\0\0\0"), 1, (PROTOCOL_ERROR,))
    expect_connection_error("connection window past 2^31-1",
                            frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1)),
                            FLOW_CONTROL_ERROR)

    # §8.2, §8.3: message rules are stream errors.
    for name, headers in [
        ("upper-case field name", request_headers(extra=[("X-Upper", "1")])),
        ("connection-specific field", request_headers(extra=[("connection", "keep-alive")])),
        ("te other than trailers", request_headers(extra=[("te", "gzip")])),
        ("missing :method", [h for h in request_headers() if h[0] != ":method"]),
        ("missing :path", [h for h in request_headers() if h[0] != ":path"]),
        ("empty :path", [(k, "" if k == ":path" else v) for k, v in request_headers()]),
        ("duplicate :path", request_headers() + [(":path", "/x")]),
        ("unknown pseudo-header", request_headers() + [(":foo", "bar")]),
        ("pseudo-header after a regular field", [(":method", "GET"), ("x-a", "1"),
                                                 (":scheme", "http"), (":path", "/"),
                                                 (":authority", HOST)]),
        ("response pseudo-header in a request", request_headers() + [(":status", "200")]),
        ("duplicate :method", request_headers() + [(":method", "GET")]),
        ("missing :scheme", [h for h in request_headers() if h[0] != ":scheme"]),
        ("empty :method", [(k, "" if k == ":method" else v) for k, v in request_headers()]),
        ("CONNECT with :path", [(":method", "CONNECT"), (":authority", HOST + ":80"),
                                (":scheme", "http"), (":path", "/")]),
        ("empty field name", request_headers(extra=[("", "x")])),
        ("value with a leading space", request_headers(extra=[("x-a", " x")])),
        ("value with NUL", request_headers(extra=[("x-a", "a\0b")])),
    ]:
        expect_stream_error(name, frame(HEADERS, END_STREAM | END_HEADERS, 1, block(headers)), 1,
                            (PROTOCOL_ERROR,))
    expect_stream_error("content-length smaller than the DATA frames",
                        frame(HEADERS, END_HEADERS, 1,
                              block(request_headers("/echo", "POST",
                                                    [("content-length", "2")]))) +
                        frame(DATA, 0, 1, b"ab") + frame(DATA, END_STREAM, 1, b"c"), 1,
                        (PROTOCOL_ERROR,))
    expect_stream_error("content-length larger than DATA",
                        frame(HEADERS, END_HEADERS, 1,
                              block(request_headers("/echo", "POST",
                                                    [("content-length", "10")]))) +
                        frame(DATA, END_STREAM, 1, b"abc"), 1, (PROTOCOL_ERROR,))

    # §4.3: HPACK errors are connection errors.
    expect_connection_error("HPACK index out of range",
                            frame(HEADERS, END_STREAM | END_HEADERS, 1, b"\xff\xff\xff\x0f"),
                            COMPRESSION_ERROR)
    for name, tail in [
        ("HPACK table size update above SETTINGS_HEADER_TABLE_SIZE", None),
        ("HPACK table size update at the end of a block", b"\x20"),
        ("HPACK indexed field with index 0", b"\x80"),
        ("HPACK literal with a name index out of range", b"\x0f\xf0\x0f\x01\x61"),
        ("HPACK Huffman string with EOS", b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff"),
        ("HPACK Huffman padding over 7 bits",
         b"\x00\x85\xf2\xb2\x4a\x87\xff\xff\xff\xfd\x25\x42\x7f"),
        ("HPACK Huffman padding not of EOS", b"\x00\x85\xf2\xb2\x4a\x82\x9d\xd5"),
    ]:
        payload = b"\x3f\xe1\xff\x03" + block(request_headers()) if tail is None else \
            block(request_headers()) + tail
        expect_connection_error(name, frame(HEADERS, END_STREAM | END_HEADERS, 1, payload),
                                COMPRESSION_ERROR)

    # §6.3, §6.4, §6.8, §6.9, §6.10: frames on the wrong stream, of the wrong size, or out
    # of place.
    header_part = frame(HEADERS, END_STREAM, 1, block(request_headers())[:3])
    for name, payload, code in [
        ("PRIORITY on stream 0", frame(PRIORITY, 0, 0, struct.pack(">IB", 1, 15)),
         PROTOCOL_ERROR),
        ("RST_STREAM on stream 0", frame(RST_STREAM, 0, 0, struct.pack(">I", CANCEL)),
         PROTOCOL_ERROR),
        ("GOAWAY on a stream", frame(GOAWAY, 0, 1, struct.pack(">II", 0, NO_ERROR)),
         PROTOCOL_ERROR),
        ("HEADERS on stream 0", frame(HEADERS, END_STREAM | END_HEADERS, 0,
                                      block(request_headers())), PROTOCOL_ERROR),
        ("WINDOW_UPDATE of length 3", frame(WINDOW_UPDATE, 0, 0, b"\0\0\1"), FRAME_SIZE_ERROR),
        ("CONTINUATION after END_HEADERS", get(1, "/hang", False, method="POST") +
         frame(CONTINUATION, END_HEADERS, 1, block([("x-a", "1")])), PROTOCOL_ERROR),
        ("CONTINUATION on stream 0", header_part + frame(CONTINUATION, END_HEADERS, 0, b"\0"),
         PROTOCOL_ERROR),
        ("CONTINUATION after DATA", get(1, "/hang", False, method="POST") +
         frame(DATA, 0, 1, b"x") + frame(CONTINUATION, END_HEADERS, 1, block([("x-a", "1")])),
         PROTOCOL_ERROR),
        ("HEADERS for another stream inside a header block", header_part + get(3),
         PROTOCOL_ERROR),
        ("PRIORITY inside a header block",
         header_part + frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)), PROTOCOL_ERROR),
        ("unknown frame inside a header block", header_part + frame(0x20, 0, 1, b"x"),
         PROTOCOL_ERROR),
        ("HEADERS with pad length past the payload",
         frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1,
               b"\x40" + block(request_headers())), PROTOCOL_ERROR),
    ]:
        expect_connection_error(name, payload, code)
    c = Conn()
    b = block(request_headers("/status/200"), c.enc)
    c.send(frame(HEADERS, END_STREAM, 1, b[:3]) + frame(CONTINUATION, 0, 1, b[3:6]) +
           frame(CONTINUATION, END_HEADERS, 1, b[6:]))
    h, _, _ = c.response(1)
    check("HEADERS with two CONTINUATION frames", h is not None and h.get(":status") == "200", h)
    c.close()
    c = Conn()
    c.send(frame(PING, ACK, 0, b"12345678"))
    check("a PING ACK is not answered", c.wait_for(lambda f: f[0] == PING, 1.0) is None)
    c.close()
    c = Conn()
    # Undefined flags and the reserved bit of the stream id are ignored (§4.1).
    c.send(frame(HEADERS, END_STREAM | END_HEADERS | 0xC2, 0x80000001,
                 block(request_headers("/status/200"), c.enc)))
    h, _, _ = c.response(1)
    check("undefined flags and the reserved bit ignored",
          h is not None and h.get(":status") == "200", h)
    c.send(get(3, "/hang", False, c.enc, "POST") +
           frame(RST_STREAM, 0, 3, struct.pack(">I", 0xFF)))
    check("RST_STREAM with an unknown error code accepted (§7)", c.alive())
    c.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0xFF)))
    got = c.goaway(1.0)
    check("GOAWAY with an unknown error code accepted (§7)", got in (None, NO_ERROR), got)
    c.close()
    stream_states()
    flow_control()

    # §8.1: trailers end the stream and carry no pseudo-header fields.
    expect_stream_error("trailers without END_STREAM", get(1, "/hang", False, method="POST") +
                        frame(HEADERS, END_HEADERS, 1, block([("x-t", "1")])), 1,
                        (PROTOCOL_ERROR,))
    expect_stream_error("pseudo-header field in trailers", get(1, "/hang", False, method="POST") +
                        frame(HEADERS, END_HEADERS | END_STREAM, 1, block([(":path", "/")])), 1,
                        (PROTOCOL_ERROR,))

    # Request trailers reach the upstream and the response comes back.
    c = Conn()
    c.send(frame(HEADERS, END_HEADERS, 1, block(request_headers("/echo", "POST"), c.enc)) +
           frame(DATA, 0, 1, b"hello") +
           frame(HEADERS, END_STREAM | END_HEADERS, 1, block([("x-trailer", "t")], c.enc)))
    h, body, _ = c.response(1)
    check("request with trailers answered", h is not None and h.get(":status") == "200", h)
    c.close()

    # §6.8: a client GOAWAY; streams already open still complete.
    c = Conn()
    c.send(get(1, "/slow/200", enc=c.enc) +
           frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR)))
    h, _, _ = c.response(1)
    check("stream completes after the client's GOAWAY", h is not None and
          h.get(":status") == "200", h)
    c.close()

    # Last: it leaves the upstream busy for a moment.
    concurrency_limit()


def flood(kind):
    """Sends an abusive frame pattern as fast as possible; expects GOAWAY and a close."""
    c = Conn()
    sent = 0
    deadline = time.time() + 10
    enc = hpack.Encoder()
    sid = 1
    while not c.closed and time.time() < deadline and sent < 200000:
        if kind == "ping":
            batch = frame(PING, 0, 0, b"pingping") * 100
        elif kind == "settings":
            batch = settings((4, 65535)) * 100
        elif kind == "priority":
            batch = frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)) * 100
        elif kind == "empty_data":
            if sid == 1:
                c.send(frame(HEADERS, END_HEADERS, 1, block(request_headers("/echo", "POST"), enc)))
                sid = 3
            batch = frame(DATA, 0, 1) * 100
        elif kind == "rapid_reset":
            batch = b""
            for _ in range(50):
                batch += frame(HEADERS, END_STREAM | END_HEADERS, sid,
                               block(request_headers("/slow/1000"), enc)) + \
                    frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
                sid += 2
        elif kind == "continuation":
            if sent == 0:
                c.send(frame(HEADERS, 0, 1, block(request_headers(), enc)))
            batch = frame(CONTINUATION, 0, 1, b"") * 100
        else:
            raise SystemExit("unknown flood " + kind)
        if not c.send(batch):
            # The server closed while frames it had not read were still arriving: its kernel
            # answers those with a reset, which discards the GOAWAY it sent before. The
            # caller checks tether_http2_abuse_closed_total for the verdict.
            print("PASS %s flood ends the connection (reset before its GOAWAY could be read)"
                  % kind)
            c.close()
            return
        sent += 100
        # Drain what the server says so its writes never block on us.
        for f in c.frames(0.001):
            if f[0] == GOAWAY:
                code = struct.unpack(">I", f[3][4:8])[0]
                check(kind + " flood ends in GOAWAY", code in (ENHANCE_YOUR_CALM, PROTOCOL_ERROR),
                      "code %d" % code)
                c.close()
                return
    got = c.goaway(3.0)
    check(kind + " flood ends in GOAWAY", got in (ENHANCE_YOUR_CALM, PROTOCOL_ERROR),
          "code %r after %d frames" % (got, sent))
    c.close()


def tls_socket(alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", PORT), timeout=5),
                        server_hostname="localhost")
    return s


def read_all(s, timeout=3.0):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, OSError):
        pass
    return data


def alpn():
    """Over TLS, ALPN decides the codec; the bytes that follow do not (RFC 9113 §3.2, §3.4)."""
    s = tls_socket(["h2"])
    check("ALPN h2 selected", s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol())
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
    data = read_all(s)
    goaway = None
    at = 0
    while at + 9 <= len(data):
        length = struct.unpack(">I", b"\0" + data[at:at + 3])[0]
        if data[at + 3] == GOAWAY and at + 17 <= len(data):
            goaway = struct.unpack(">I", data[at + 13:at + 17])[0]
        at += 9 + length
    check("ALPN h2 then HTTP/1.1 bytes: GOAWAY PROTOCOL_ERROR", goaway == PROTOCOL_ERROR,
          data[:80])
    s.close()
    for offer in (["http/1.1"], None):
        s = tls_socket(offer)
        s.sendall(PREFACE + settings())
        data = read_all(s)
        check("ALPN %s then the HTTP/2 preface: HTTP/1.1 400" % (offer or "absent"),
              data.startswith(b"HTTP/1.1 400"), data[:80])
        s.close()


def main():
    scenario = sys.argv[2]
    if scenario == "conformance":
        conformance()
    elif scenario == "alpn":
        alpn()
    elif scenario.startswith("flood_"):
        flood(scenario[len("flood_"):])
    else:
        raise SystemExit("unknown scenario " + scenario)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
