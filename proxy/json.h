#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tether::proxy {

/// A minimal streaming JSON writer for admin responses (no DOM, no library needed).
class JsonWriter {
 public:
  JsonWriter& beginObject() { return open('{'); }
  JsonWriter& endObject() { return close('}'); }
  JsonWriter& beginArray() { return open('['); }
  JsonWriter& endArray() { return close(']'); }
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view v);
  JsonWriter& value(const char* v) { return value(std::string_view(v)); }
  JsonWriter& value(const std::string& v) { return value(std::string_view(v)); }
  JsonWriter& value(int64_t v);
  JsonWriter& value(double v);
  JsonWriter& value(bool v);
  JsonWriter& null();
  const std::string& str() const { return out_; }

  /// Appends `s` to `out` as a quoted JSON string.
  static void quote(std::string& out, std::string_view s);

 private:
  JsonWriter& open(char c);
  JsonWriter& close(char c);
  void separate();

  std::string out_;
  bool needComma_ = false;
  bool afterKey_ = false;
};

}  // namespace tether::proxy
