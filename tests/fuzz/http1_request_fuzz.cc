// The HTTP/1 request parser with Tether's strictness rules (llhttp plus the checks for
// the smuggling shapes), fed in pieces: the first byte picks where the input is split, so
// field and chunk boundaries fall anywhere.

#include <cstdint>
#include <string>

#include "proxy/codec/http1_parser.h"
#include "tests/fuzz/http1_sink.h"

using namespace tether::proxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t split = data[0];
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  tether::fuzz::Http1Sink sink;
  Http1Parser parser(Http1Parser::Type::kRequest, sink, Http1Limits{8192, 64});
  size_t at = 0;
  while (at < input.size()) {
    size_t n = std::min(input.size() - at, split == 0 ? input.size() : split);
    Http1Parser::Result r = parser.execute(input.data() + at, n);
    if (r.status == Http1Parser::Status::kError || r.status == Http1Parser::Status::kUpgrade) {
      return 0;
    }
    if (r.status == Http1Parser::Status::kPaused) {
      at += r.consumed;
      parser.resume();
      continue;
    }
    at += n;
  }
  parser.finish();
  return 0;
}
