// A control-plane message as a sidecar receives it: the JSON parser, then the snapshot
// reader (version, documents, endpoints).

#include <cstdint>
#include <string_view>

#include "control/control_client.h"
#include "proxy/common/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto message = tether::proxy::JsonValue::parse(text);
  if (!message) return 0;
  tether::control::PushedSnapshot s = tether::control::PushedSnapshot::parse(*message);
  (void)s.serialize();
  return 0;
}
