#pragma once

#include <string>

#include "config/bootstrap.h"

namespace tether::proxy {

/// Puts a request's path into the one form that routing, every policy (authorization, rate
/// limits, the HMAC canonical path) and the upstream all see, so that no spelling of a path
/// reaches what another spelling is denied (RFC 3986 §6.2.2, as Envoy's normalize_path and
/// merge_slashes). On the path only; the query is left as it is.
///   1. Percent-escapes: an escaped unreserved character (ALPHA DIGIT - . _ ~) is decoded;
///      any other escape is kept, with upper-case hex digits. A `%` not followed by two hex
///      digits is refused.
///   2. Escaped slashes (%2F) and backslashes (%5C, or a raw `\`) are refused, kept or
///      decoded, as `escapedSlashes` says.
///   3. Runs of `/` become one (mergeSlashes).
///   4. Dot segments (`.`, `..`) are removed (RFC 3986 §5.2.4); `..` never climbs above `/`.
class PathNormalizer {
 public:
  enum class Result { kUnchanged, kChanged, kRejected };

  explicit PathNormalizer(const config::PathNormalization& options) : options_(options) {}

  /// Normalizes `target` (origin-form: path, then an optional ?query) in place. Targets that
  /// do not start with `/` (`*`, CONNECT's authority) are left alone. kRejected leaves
  /// `target` unspecified and sets `why`.
  Result normalize(std::string& target, const char*& why) const;

 private:
  const config::PathNormalization& options_;
};

}  // namespace tether::proxy
