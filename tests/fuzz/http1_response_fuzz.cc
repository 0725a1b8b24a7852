// The HTTP/1 response parser (the upstream side): status lines, framing, chunked bodies and
// trailers, close-delimited bodies ended by finish().

#include <cstdint>
#include <string>

#include "proxy/codec/http1_parser.h"
#include "tests/fuzz/http1_sink.h"

using namespace tether::proxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  tether::fuzz::Http1Sink sink;
  sink.skipBody = data[0] & 1;  // the response to a HEAD has no body, whatever it says
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  Http1Parser parser(Http1Parser::Type::kResponse, sink);
  size_t at = 0;
  while (at < input.size()) {
    Http1Parser::Result r = parser.execute(input.data() + at, input.size() - at);
    if (r.status != Http1Parser::Status::kPaused) break;
    at += r.consumed;
    parser.resume();
  }
  parser.finish();
  return 0;
}
