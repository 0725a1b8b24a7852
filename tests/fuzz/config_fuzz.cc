// The YAML loader on operator input: the first byte says whether the rest is a bootstrap
// (tether.yaml) or rule documents; every error must come back as file:line:col, never a
// crash.

#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  bool bootstrap = data[0] & 1;
  tether::config::LoadResult r =
      bootstrap
          ? tether::config::loadFromSources(tether::config::Source{"boot.yaml", text}, {}, false)
          : tether::config::loadFromSources(tether::config::Source{"boot.yaml", ""},
                                            {tether::config::Source{"rules.yaml", text}}, false);
  for (const auto& e : r.errors) (void)e.format();
  return 0;
}
