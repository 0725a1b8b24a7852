#!/usr/bin/python3
"""Turns the desync corpus (http-desync-guardian YAML cases) into raw HTTP/1 requests for
the http1_request fuzz target: one file per case, the first byte 0 (no split), then the
request line, the headers as written and an empty line.

usage: desync_seeds.py CORPUS_DIR OUT_DIR
"""
import glob
import os
import sys

import yaml


def raw(case):
    line = f"{case.get('method', 'GET')} {case.get('uri', '/')}"
    version = case.get("version")
    if version:
        line += f" {version}"
    out = line + "\r\n"
    for h in case.get("headers") or []:
        out += f"{h.get('name', '')}: {h.get('value', '')}\r\n"
    # The bytes as the case wrote them: \x escapes stand for single bytes.
    return b"\x00" + (out + "\r\n").encode("latin-1", errors="replace")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    n = 0
    for path in sorted(glob.glob(os.path.join(src, "**", "*.yaml"), recursive=True)):
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            cases = yaml.safe_load(f) or []
        stem = os.path.splitext(os.path.basename(path))[0]
        for i, case in enumerate(cases):
            if not isinstance(case, dict):
                continue
            with open(os.path.join(dst, f"{stem}-{i:03d}"), "wb") as out:
                out.write(raw(case))
            n += 1
    print(f"{n} desync case(s) written to {dst}")


if __name__ == "__main__":
    main()
