#!/usr/bin/python3
"""A TETHER-HMAC-SHA256 client written from docs/security.md alone, with the standard
library: proves the specification is enough to call a protected service without Tether.

usage: hmac_client.py example                     print the worked example's signature
       hmac_client.py call HOST:PORT KEY_ID SECRET METHOD TARGET [BODY]
                                                  send a signed request, print the status
"""
import hashlib
import hmac
import http.client
import secrets
import sys
import time
from urllib.parse import quote, unquote_to_bytes

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


def encode(raw: bytes) -> str:
    return "".join(chr(b) if chr(b) in UNRESERVED else "%%%02X" % b for b in raw)


def decode(s: str) -> bytes:
    # %XX with two hex digits decodes; anything else stays as is ('+' is a plus).
    out, i = bytearray(), 0
    data = s.encode()
    while i < len(data):
        if data[i] == ord("%") and i + 2 < len(data) and all(
                c in b"0123456789abcdefABCDEF" for c in data[i + 1:i + 3]):
            out.append(int(data[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def canonical_path(target: str) -> str:
    path = target.split("?", 1)[0]
    segments = path[1:].split("/") if path.startswith("/") else path.split("/")
    out, trailing = [], path.endswith("/")
    for n, raw in enumerate(segments):
        seg, last = decode(raw), n == len(segments) - 1
        if seg == b".":
            trailing = trailing or last
        elif seg == b"..":
            if out:
                out.pop()
            trailing = trailing or last
        elif not (last and seg == b""):
            out.append(seg)
    result = "".join("/" + encode(s) for s in out)
    return result + "/" if not result or trailing else result


def canonical_query(target: str) -> str:
    if "?" not in target:
        return ""
    query = target.split("?", 1)[1].split("#", 1)[0]
    params = []
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        params.append((encode(decode(name)), encode(decode(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(params))


def header_value(v: str) -> str:
    return " ".join(v.strip(" \t").split())


def sign(method, target, host, headers, body, key_id, secret, date, nonce):
    headers = dict(headers)
    headers["x-tether-content-sha256"] = hashlib.sha256(body).hexdigest()
    headers["x-tether-date"] = date
    headers["x-tether-nonce"] = nonce
    names = sorted({"host", *(h.lower() for h in headers)})
    lines = [method, canonical_path(target), canonical_query(target)]
    for name in names:
        value = host if name == "host" else headers.get(name, "")
        lines.append(f"{name}:{header_value(value)}")
    lines += ["", ";".join(names), headers["x-tether-content-sha256"]]
    canonical = "\n".join(lines)
    to_sign = "\n".join(["TETHER-HMAC-SHA256", date, key_id,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"TETHER-HMAC-SHA256 keyId={key_id}, "
                                f"signedHeaders={';'.join(names)}, signature={signature}")
    return headers, canonical, to_sign


def main():
    if sys.argv[1] == "example":
        headers, canonical, to_sign = sign(
            "POST", "/api/v1/orders/../rate?b=2&a=x%20y", "ratings:8080",
            {"content-type": "application/json"}, b'{"item":42}', "orders-2026",
            "orders-secret-2026", "20261126T153000Z", "7f3c2a9e5b1d4e608a2b3c4d5e6f7081")
        print(headers["authorization"])
        return
    _, _, hostport, key_id, secret, method, target, *rest = sys.argv
    body = rest[0].encode() if rest else b""
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers, _, _ = sign(method, target, hostport, {"content-type": "text/plain"}, body, key_id,
                         secret, date, secrets.token_hex(16))
    conn = http.client.HTTPConnection(hostport, timeout=5)
    conn.request(method, target, body=body, headers=headers)
    print(conn.getresponse().status)


if __name__ == "__main__":
    main()
