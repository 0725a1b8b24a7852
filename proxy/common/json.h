#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

/// A parsed JSON value (for control-plane messages). Numbers are kept as doubles.
class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  /// Parses one JSON text; nullopt when it is not valid JSON, nests deeper than
  /// `maxDepth`, or has trailing bytes.
  static std::optional<JsonValue> parse(std::string_view text, int maxDepth = 32);

  Type type() const { return type_; }
  bool isObject() const { return type_ == Type::kObject; }
  bool isArray() const { return type_ == Type::kArray; }
  bool isString() const { return type_ == Type::kString; }
  /// The member `key` of an object, or a shared null value.
  const JsonValue& operator[](const std::string& key) const;
  /// This string, or `fallback` for any other type.
  const std::string& str(const std::string& fallback = empty()) const;
  double number(double fallback = 0) const { return type_ == Type::kNumber ? number_ : fallback; }
  bool boolean(bool fallback = false) const { return type_ == Type::kBool ? bool_ : fallback; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::map<std::string, JsonValue>& members() const { return members_; }

 private:
  static const std::string& empty();
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::map<std::string, JsonValue> members_;
};

}  // namespace tether::proxy
