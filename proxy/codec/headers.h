#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/pool.h"

namespace tether::proxy {

/// A header name or value. Kept on the worker's pool: most heads carry values past the
/// small-string buffer (dates, content types, tags), each of which was a malloc and a free
/// per request, and with a hundred streams in flight glibc's per-thread cache runs dry.
using HeaderString = PooledString;

/// An ordered list of header fields. Names are stored lower-case (HTTP/2 style), values as
/// received minus surrounding whitespace. Small: linear search beats hashing at this size.
class HeaderMap {
 public:
  struct Field {
    HeaderString name;
    HeaderString value;
  };

  /// The first value for `name` (lower-case), or nullptr.
  const HeaderString* get(std::string_view name) const;
  /// How many fields are named `name` (lower-case).
  size_t count(std::string_view name) const;
  void add(std::string_view name, std::string_view value);
  /// Appends an empty field for a parser to fill in place.
  Field& addEmpty() { return fields_.emplace_back(); }
  /// Replaces every field called `name` with one field.
  void set(std::string_view name, std::string_view value);
  /// Removes every field called `name`; returns how many were removed.
  size_t remove(std::string_view name);
  bool empty() const { return fields_.empty(); }
  size_t size() const { return fields_.size(); }
  void clear() { fields_.clear(); }

  using Fields = std::vector<Field, PoolAllocator<Field>>;

  Fields::const_iterator begin() const { return fields_.begin(); }
  Fields::const_iterator end() const { return fields_.end(); }
  Fields& fields() { return fields_; }

 private:
  Fields fields_;
};

/// A field's value as a view; nullopt when the field is absent.
inline std::optional<std::string_view> view(const HeaderString* value) {
  if (!value) return std::nullopt;
  return std::string_view(*value);
}

/// A request as the filters see it, whatever the codec.
struct RequestHead {
  std::string method;
  std::string path;             // origin-form path and query; authority-form for CONNECT
  std::string authority;        // Host header / :authority, lower-case
  HeaderMap headers;            // without Host and without hop-by-hop fields
  int versionMinor = 1;         // HTTP/1.x minor version (1 for HTTP/2 streams)
  bool upgrade = false;         // Upgrade or CONNECT: becomes a byte tunnel once accepted
  std::string upgradeProtocol;  // the Upgrade header's value, e.g. "websocket"

  bool isConnect() const { return method == "CONNECT"; }
  bool isHead() const { return method == "HEAD"; }
  /// RFC 9110 §9.2.2 idempotent methods: safe to retry when nothing came back.
  bool idempotent() const;
  /// The path without the query string.
  std::string_view pathOnly() const;
};

struct ResponseHead {
  int status = 200;
  HeaderMap headers;  // without hop-by-hop fields
};

/// ASCII lower-casing in place.
void toLowerInPlace(std::string& s);
bool equalsIgnoreCase(std::string_view a, std::string_view b);

/// Whether `authority` is a valid Host / :authority value (RFC 9110 §7.2, RFC 3986
/// §3.2.2): a reg-name (unreserved, pct-encoded, sub-delims) or an IP literal in brackets,
/// then an optional ":" port of digits, the port required when `requirePort` (CONNECT).
/// No userinfo ("user@host": RFC 9110 §4.2.4 makes it an error), no spaces, no slashes.
bool validAuthority(std::string_view authority, bool requirePort);

/// A gRPC message: content-type application/grpc (or application/grpc+proto, ...).
bool isGrpc(const HeaderMap& headers);

/// Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade, Trailer.
bool isHopByHopField(std::string_view name);

/// RFC 9110 §7.6.1: removes Connection, the fields it names, and the other hop-by-hop
/// fields (Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade, Trailer,
/// Proxy-Authenticate/-Authorization are left to end-to-end use only when not named).
void stripHopByHop(HeaderMap& headers);

}  // namespace tether::proxy
