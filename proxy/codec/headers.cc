#include "proxy/codec/headers.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace tether::proxy {

const HeaderString* HeaderMap::get(std::string_view name) const {
  for (const auto& f : fields_) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

size_t HeaderMap::count(std::string_view name) const {
  size_t n = 0;
  for (const auto& f : fields_) n += f.name == name;
  return n;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  // Built before it goes in: `value` may view a field of this map, which growing would move.
  Field f{HeaderString(name), HeaderString(value)};
  fields_.push_back(std::move(f));
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  Field f{HeaderString(name), HeaderString(value)};
  remove(name);
  fields_.push_back(std::move(f));
}

size_t HeaderMap::remove(std::string_view name) {
  size_t before = fields_.size();
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(),
                               [&](const Field& f) { return f.name == name; }),
                fields_.end());
  return before - fields_.size();
}

bool RequestHead::idempotent() const {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

std::string_view RequestHead::pathOnly() const {
  std::string_view p = path;
  size_t q = p.find('?');
  return q == std::string_view::npos ? p : p.substr(0, q);
}

void toLowerInPlace(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

bool isHopByHopField(std::string_view name) {
  // By length first: most fields of a head are none of these and cost one switch.
  switch (name.size()) {
    case 2:
      return name == "te";
    case 7:
      return name == "upgrade" || name == "trailer";
    case 10:
      return name == "connection" || name == "keep-alive";
    case 16:
      return name == "proxy-connection";
    case 17:
      return name == "transfer-encoding";
    default:
      return false;
  }
}

namespace {

/// Whether the comma-separated `list` (a Connection value) names `field`.
bool namedBy(std::string_view list, std::string_view field) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view token = list.substr(0, comma);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
      token.remove_prefix(1);
    }
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (!token.empty() && equalsIgnoreCase(token, field)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

bool isGrpc(const HeaderMap& headers) {
  const HeaderString* ct = headers.get("content-type");
  return ct && ct->compare(0, 16, "application/grpc") == 0;
}

namespace {

// RFC 3986 reg-name bytes other than pct-encoded ones: unreserved and sub-delims.
constexpr std::array<bool, 256> kRegName = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

}  // namespace

bool validAuthority(std::string_view a, bool requirePort) {
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  size_t i = 0;
  if (!a.empty() && a[0] == '[') {
    for (i = 1; i < a.size() && a[i] != ']'; ++i) {
      if (!hex(a[i]) && a[i] != ':' && a[i] != '.') return false;
    }
    if (i == a.size() || i == 1) return false;
    ++i;
  } else {
    while (i < a.size()) {
      while (i < a.size() && kRegName[static_cast<unsigned char>(a[i])]) ++i;  // the usual run
      if (i == a.size() || a[i] == ':') break;
      if (a[i] != '%' || i + 2 >= a.size() || !hex(a[i + 1]) || !hex(a[i + 2])) return false;
      i += 3;
    }
    if (i == 0) return false;  // no host
  }
  if (i == a.size()) return !requirePort;
  if (a[i] != ':') return false;
  std::string_view port = a.substr(i + 1);
  if (requirePort && port.empty()) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

void stripHopByHop(HeaderMap& headers) {
  // Fields named by Connection are hop-by-hop too. Its values are set aside first, since the
  // compaction below overwrites the Connection field itself. "keep-alive", the usual value,
  // names a field that goes anyway, so it is not searched for field by field.
  std::string named;
  for (const auto& f : headers) {
    if (std::string_view(f.name) != "connection" || equalsIgnoreCase(f.value, "keep-alive")) {
      continue;
    }
    if (!named.empty()) named += ',';
    named += f.value;
  }
  auto& fields = headers.fields();
  fields.erase(std::remove_if(fields.begin(), fields.end(),
                              [&](const HeaderMap::Field& f) {
                                return isHopByHopField(f.name) ||
                                       (!named.empty() && namedBy(named, f.name));
                              }),
               fields.end());
}

}  // namespace tether::proxy
