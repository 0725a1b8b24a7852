// The chunked request-body decoder: a fixed valid head, then the input as the body, with
// Tether's chunk checks (sizes, extensions, CRLFs, trailers) and llhttp's dechunking.

#include <cstdint>
#include <string>

#include "proxy/codec/http1_parser.h"
#include "tests/fuzz/http1_sink.h"

using namespace tether::proxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input = "POST /upload HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      std::string(reinterpret_cast<const char*>(data), size);
  tether::fuzz::Http1Sink sink;
  Http1Parser parser(Http1Parser::Type::kRequest, sink);
  // Byte by byte where the body starts, so chunk-size lines split everywhere.
  size_t at = 0;
  while (at < input.size()) {
    size_t n = at < 80 ? input.size() - at : 1;
    Http1Parser::Result r = parser.execute(input.data() + at, n);
    if (r.status == Http1Parser::Status::kError) return 0;
    if (r.status == Http1Parser::Status::kPaused) {
      at += r.consumed;
      parser.resume();
      continue;
    }
    at += n;
  }
  return 0;
}
