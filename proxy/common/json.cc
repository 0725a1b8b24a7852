#include "proxy/common/json.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace tether::proxy {

void JsonWriter::quote(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void JsonWriter::separate() {
  if (afterKey_) {
    afterKey_ = false;
    return;
  }
  if (needComma_) out_ += ',';
}

JsonWriter& JsonWriter::open(char c) {
  separate();
  out_ += c;
  needComma_ = false;
  return *this;
}

JsonWriter& JsonWriter::close(char c) {
  out_ += c;
  needComma_ = true;
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  separate();
  quote(out_, k);
  out_ += ':';
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view v) {
  separate();
  quote(out_, v);
  needComma_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(int64_t v) {
  separate();
  out_ += std::to_string(v);
  needComma_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(double v) {
  separate();
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  out_ += buf;
  needComma_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(bool v) {
  separate();
  out_ += v ? "true" : "false";
  needComma_ = true;
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  out_ += "null";
  needComma_ = true;
  return *this;
}

class JsonParser {
 public:
  JsonParser(std::string_view text, int maxDepth) : s_(text), maxDepth_(maxDepth) {}

  bool parseDocument(JsonValue& out) {
    if (!value(out, 0)) return false;
    skipSpace();
    return pos_ == s_.size();
  }

 private:
  void skipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(uint32_t& out) {
    if (pos_ + 4 > s_.size()) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        out |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        out |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  bool string(std::string& out) {
    if (pos_ >= s_.size() || s_[pos_] != '"') return false;
    ++pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) return false;
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {
            uint32_t low = 0;
            if (!literal("\\u") || !hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          appendUtf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool number(double& out) {
    size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size() &&
           (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.' ||
            s_[pos_] == 'e' || s_[pos_] == 'E' || s_[pos_] == '+' || s_[pos_] == '-')) {
      ++pos_;
    }
    if (pos_ == start) return false;
    std::string text(s_.substr(start, pos_ - start));
    char* end = nullptr;
    out = std::strtod(text.c_str(), &end);
    return end == text.c_str() + text.size();
  }
  bool value(JsonValue& out, int depth) {
    if (depth > maxDepth_) return false;
    skipSpace();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      out.type_ = JsonValue::Type::kObject;
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      while (true) {
        skipSpace();
        std::string key;
        if (!string(key)) return false;
        skipSpace();
        if (pos_ >= s_.size() || s_[pos_++] != ':') return false;
        if (!value(out.members_[key], depth + 1)) return false;
        skipSpace();
        if (pos_ >= s_.size()) return false;
        char sep = s_[pos_++];
        if (sep == '}') return true;
        if (sep != ',') return false;
      }
    }
    if (c == '[') {
      ++pos_;
      out.type_ = JsonValue::Type::kArray;
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      while (true) {
        out.items_.emplace_back();
        if (!value(out.items_.back(), depth + 1)) return false;
        skipSpace();
        if (pos_ >= s_.size()) return false;
        char sep = s_[pos_++];
        if (sep == ']') return true;
        if (sep != ',') return false;
      }
    }
    if (c == '"') {
      out.type_ = JsonValue::Type::kString;
      return string(out.string_);
    }
    if (literal("true")) {
      out.type_ = JsonValue::Type::kBool;
      out.bool_ = true;
      return true;
    }
    if (literal("false")) {
      out.type_ = JsonValue::Type::kBool;
      return true;
    }
    if (literal("null")) return true;
    out.type_ = JsonValue::Type::kNumber;
    return number(out.number_);
  }

  std::string_view s_;
  int maxDepth_;
  size_t pos_ = 0;
};

std::optional<JsonValue> JsonValue::parse(std::string_view text, int maxDepth) {
  JsonValue v;
  JsonParser p(text, maxDepth);
  if (!p.parseDocument(v)) return std::nullopt;
  return v;
}

const std::string& JsonValue::empty() {
  static const std::string kEmpty;
  return kEmpty;
}

const JsonValue& JsonValue::operator[](const std::string& key) const {
  static const JsonValue kNull;
  if (type_ != Type::kObject) return kNull;
  auto it = members_.find(key);
  return it == members_.end() ? kNull : it->second;
}

const std::string& JsonValue::str(const std::string& fallback) const {
  return type_ == Type::kString ? string_ : fallback;
}

}  // namespace tether::proxy
