#!/usr/bin/python3
"""A real gRPC server and client (Debian's python3-grpcio) for Tether's integration tests.
Messages are raw bytes (no protobuf code generation needed).

  grpc_peer.py server            serves test.Echo and grpc.health.v1.Health on a free port;
                                 prints "PORT <n>", runs until killed
  grpc_peer.py client PORT AUTH  runs the calls below through 127.0.0.1:PORT with
                                 :authority AUTH; prints one line per check, exits 1 on failure
  grpc_peer.py status PORT AUTH [METHOD PAYLOAD]
                                 one unary call; prints "OK [reply]" or
                                 "<STATUS_NAME> <details>"
"""

import sys
import time
from concurrent import futures

import grpc

SERVICE = "test.Echo"


def unary(request, context):
    return b"echo:" + request


def server_stream(request, context):
    for i in range(int(request)):
        yield b"item-%d" % i


def client_stream(request_iterator, context):
    return b"%d" % sum(len(r) for r in request_iterator)


def bidi(request_iterator, context):
    for r in request_iterator:
        yield b"bidi:" + r


flaky_calls = {}


def flaky(request, context):
    # Fails with UNAVAILABLE the first N times a given payload is seen (payload "N:id").
    n, _, key = request.partition(b":")
    seen = flaky_calls.get(key, 0)
    flaky_calls[key] = seen + 1
    if seen < int(n):
        context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
    return b"ok after %d" % seen


def slow(request, context):
    time.sleep(float(request))
    return b"slept"


# grpc.health.v1.Health, written from its .proto: HealthCheckRequest { string service = 1; },
# HealthCheckResponse { ServingStatus status = 1; } (SERVING = 1, NOT_SERVING = 2). The
# server as a whole ("") and test.Echo start SERVING; SetHealth changes one, an unknown
# name gets NOT_FOUND as the protocol says.
health = {"": 1, SERVICE: 1}


def health_check(request, context):
    name = b""
    if request[:1] == b"\x0a":
        name = request[2:2 + request[1]]
    name = name.decode()
    if name not in health:
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return b"\x08" + bytes([health[name]])


def set_health(request, context):
    # Payload "service=STATUS" (service may be empty).
    name, _, value = request.decode().partition("=")
    health[name] = int(value)
    return b"set"


def serve():
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Flaky": grpc.unary_unary_rpc_method_handler(flaky),
        "SetHealth": grpc.unary_unary_rpc_method_handler(set_health),
    }
    checks = {"Check": grpc.unary_unary_rpc_method_handler(health_check)}
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(SERVICE, handlers),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", checks),
    ))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("PORT %d" % port, flush=True)
    server.wait_for_termination()


failures = 0


def check(name, ok, why=""):
    global failures
    print(("PASS " if ok else "FAIL ") + name + ("" if ok or not why else ": " + str(why)),
          flush=True)
    if not ok:
        failures += 1


def channel(port, authority):
    return grpc.insecure_channel("127.0.0.1:%s" % port,
                                 options=[("grpc.default_authority", authority)])


def client(port, authority):
    ch = channel(port, authority)
    m = lambda kind, name: getattr(ch, kind)("/%s/%s" % (SERVICE, name))
    check("unary", m("unary_unary", "Unary")(b"hello", timeout=10) == b"echo:hello")
    big = bytes(range(256)) * 4096  # 1 MiB each way
    check("unary 1 MiB", m("unary_unary", "Unary")(big, timeout=10) == b"echo:" + big)
    items = list(m("unary_stream", "ServerStream")(b"50", timeout=10))
    check("server streaming", items == [b"item-%d" % i for i in range(50)], len(items))
    total = m("stream_unary", "ClientStream")(iter([b"x" * 1000] * 100), timeout=10)
    check("client streaming", total == b"100000", total)
    replies = list(m("stream_stream", "Bidi")(iter([b"a", b"b", b"c"] * 10), timeout=10))
    check("bidirectional streaming", replies == [b"bidi:" + x for x in [b"a", b"b", b"c"] * 10],
          len(replies))
    try:
        m("unary_unary", "Slow")(b"2", timeout=0.3)
        check("deadline expires", False, "no error")
    except grpc.RpcError as e:
        check("deadline expires", e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.code())
    sys.exit(1 if failures else 0)


def status(port, authority, method="Unary", payload=b"x"):
    try:
        reply = channel(port, authority).unary_unary("/%s/%s" % (SERVICE, method))(payload,
                                                                                   timeout=5)
        print("OK" if method == "Unary" else "OK " + reply.decode())
    except grpc.RpcError as e:
        print("%s %s" % (e.code().name, e.details()))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve()
    elif sys.argv[1] == "client":
        client(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 5:
        status(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].encode())
    else:
        status(sys.argv[2], sys.argv[3])
