// The HMAC Authorization header, the signed-header list and the canonical request: what an
// inbound sidecar parses from every signed request.

#include <cstdint>
#include <string>
#include <string_view>

#include "filters/auth/hmac.h"

namespace hmac = tether::filters::hmac;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The header value, then (after a NUL) a request line's path, to canonicalize.
  size_t nul = text.find('\0');
  std::string_view header = text.substr(0, nul);
  std::string_view path = nul == std::string_view::npos ? "/" : text.substr(nul + 1);
  hmac::Authorization a;
  if (hmac::parseAuthorization(header, a)) {
    tether::proxy::HeaderMap headers;
    headers.add("content-type", "text/plain");
    headers.add(std::string(hmac::kDateHeader), std::string(path.substr(0, 16)));
    std::string p(path);
    hmac::RequestView view{"GET", p, "fuzz", &headers};
    (void)hmac::canonicalRequest(view, hmac::signedHeaderNames(a.signedHeaders),
                                 hmac::kUnsignedPayload);
  }
  (void)hmac::parseDate(header);
  return 0;
}
