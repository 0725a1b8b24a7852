#pragma once
// What the HTTP/1 fuzz targets hand the parser: callbacks that read what the codecs read
// off a head and count the body.

#include <cstdint>

#include "proxy/codec/http1_parser.h"

namespace tether::fuzz {

struct Http1Sink : proxy::Http1Parser::Callbacks {
  bool skipBody = false;  // a HEAD request, or the response to one
  uint64_t body = 0;
  int onHeadersComplete(proxy::Http1Message& m) override {
    (void)m.headers.get("host");
    (void)m.headers.get("content-length");
    return skipBody || m.method == "HEAD" ? 1 : 0;
  }
  int onBody(const char*, size_t len) override {
    body += len;
    return 0;
  }
  int onMessageComplete(proxy::HeaderMap&) override { return 0; }
};

}  // namespace tether::fuzz
