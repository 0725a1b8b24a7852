#include "control/protocol.h"

namespace tether::control {

void writeLabels(proxy::JsonWriter& j, const config::Labels& labels) {
  j.beginObject();
  for (const auto& [k, v] : labels) j.key(k).value(v);
  j.endObject();
}

void writeReasons(proxy::JsonWriter& j, const NackReasons& reasons) {
  j.beginArray();
  for (const auto& [doc, reason] : reasons) {
    j.beginObject();
    j.key("document").value(doc);
    j.key("reason").value(reason);
    j.endObject();
  }
  j.endArray();
}

}  // namespace tether::control
