#include "proxy/codec/path_normalizer.h"

#include <string_view>

namespace tether::proxy {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Whether the path needs any work: one scan, no allocation, for the common clean path.
bool needsWork(std::string_view path) {
  char prev = 0;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%' || c == '\\') return true;
    if (prev == '/' && (c == '/' || c == '.')) return true;
    prev = c;
  }
  return false;
}

// RFC 3986 §5.2.4 on a path that starts with '/', one segment at a time; `out` is built
// as the output buffer of the RFC's algorithm.
void removeDotSegments(std::string_view in, bool mergeSlashes, std::string& out) {
  out.clear();
  size_t i = 0;
  while (i < in.size()) {
    // in[i] is '/': the segment runs to the next '/'.
    size_t end = in.find('/', i + 1);
    if (end == std::string_view::npos) end = in.size();
    std::string_view seg = in.substr(i + 1, end - i - 1);
    bool last = end == in.size();
    if (seg == ".") {
      if (last) out += '/';
    } else if (seg == "..") {
      size_t cut = out.rfind('/');
      out.resize(cut == std::string::npos ? 0 : cut);
      if (last) out += '/';
    } else if (seg.empty() && mergeSlashes && !last) {
      // "//": the empty segment goes.
    } else {
      out += '/';
      out.append(seg);
    }
    i = end;
  }
  if (out.empty()) out = "/";
}

}  // namespace

PathNormalizer::Result PathNormalizer::normalize(std::string& target, const char*& why) const {
  if (!options_.enabled || target.empty() || target[0] != '/') return Result::kUnchanged;
  size_t q = target.find('?');
  std::string_view path(target.data(), q == std::string::npos ? target.size() : q);
  if (!needsWork(path)) return Result::kUnchanged;
  using Escaped = config::PathNormalization::EscapedSlashes;
  // Pass 1: escapes.
  std::string decoded;
  decoded.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '\\') {
      if (options_.escapedSlashes == Escaped::kReject) {
        why = "backslash in path";
        return Result::kRejected;
      }
      decoded += options_.escapedSlashes == Escaped::kUnescape ? '/' : '\\';
      continue;
    }
    if (c != '%') {
      decoded += c;
      continue;
    }
    int hi = i + 2 < path.size() ? hexValue(path[i + 1]) : -1;
    int lo = hi >= 0 ? hexValue(path[i + 2]) : -1;
    if (lo < 0) {
      why = "invalid percent-escape in path";
      return Result::kRejected;
    }
    auto byte = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
    if (isUnreserved(byte)) {
      decoded += static_cast<char>(byte);
    } else if (byte == '/' || byte == '\\') {
      if (options_.escapedSlashes == Escaped::kReject) {
        why = "escaped slash or backslash in path";
        return Result::kRejected;
      }
      if (options_.escapedSlashes == Escaped::kUnescape) {
        decoded += '/';
      } else {
        static constexpr char kHex[] = "0123456789ABCDEF";
        decoded += '%';
        decoded += kHex[byte >> 4];
        decoded += kHex[byte & 15];
      }
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      decoded += '%';
      decoded += kHex[byte >> 4];
      decoded += kHex[byte & 15];
    }
  }
  // Pass 2: dot segments and repeated slashes.
  std::string out;
  out.reserve(decoded.size() + 1);
  removeDotSegments(decoded, options_.mergeSlashes, out);
  if (q != std::string::npos) out.append(target, q, std::string::npos);
  if (out == target) return Result::kUnchanged;
  target.swap(out);
  return Result::kChanged;
}

}  // namespace tether::proxy
