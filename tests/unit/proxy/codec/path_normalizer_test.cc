#include "proxy/codec/path_normalizer.h"

#include <catch2/catch.hpp>

using tether::config::PathNormalization;
using tether::proxy::PathNormalizer;

namespace {

std::string normalized(const std::string& in, const PathNormalization& options = {}) {
  std::string target = in;
  const char* why = nullptr;
  if (PathNormalizer(options).normalize(target, why) == PathNormalizer::Result::kRejected) {
    return std::string("REJECTED: ") + why;
  }
  return target;
}

}  // namespace

TEST_CASE("paths are normalized: dot segments, unreserved escapes, repeated slashes", "[path]") {
  // Clean paths are left alone.
  CHECK(normalized("/") == "/");
  CHECK(normalized("/api/v1/items?x=1") == "/api/v1/items?x=1");
  CHECK(normalized("/a/.hidden/b..c") == "/a/.hidden/b..c");
  // The authorization-bypass shapes all land on the path they spell.
  CHECK(normalized("/api/../admin/x") == "/admin/x");
  CHECK(normalized("/api/%2e%2e/admin/x") == "/admin/x");
  CHECK(normalized("/api/%2E%2E/admin/x") == "/admin/x");
  CHECK(normalized("/api//admin") == "/api/admin");
  CHECK(normalized("/api/./admin") == "/api/admin");
  CHECK(normalized("/%61pi/admin") == "/api/admin");
  CHECK(normalized("//api/x") == "/api/x");
  CHECK(normalized("/./api/x") == "/api/x");
  CHECK(normalized("/x/../api/x") == "/api/x");
  // RFC 3986 §5.4 examples, on paths.
  CHECK(normalized("/a/b/c/./../../g") == "/a/g");
  CHECK(normalized("/a/b/c/..") == "/a/b/");
  CHECK(normalized("/a/b/c/.") == "/a/b/c/");
  CHECK(normalized("/..") == "/");
  CHECK(normalized("/../../x") == "/x");
  CHECK(normalized("/a/..") == "/");
  CHECK(normalized("/a//") == "/a/");
  // Reserved and other escapes are kept, with upper-case hex; the query is untouched.
  CHECK(normalized("/a%3fb/%e2%82%ac?q=%2e%2e/../x") == "/a%3Fb/%E2%82%AC?q=%2e%2e/../x");
  CHECK(normalized("/a%20b") == "/a%20b");
  // Normalizing twice changes nothing.
  for (const char* p : {"/a/%2e%2e/b//c/./d", "/%7euser/x/..", "/a%3fb/../c"}) {
    std::string once = normalized(p);
    CHECK(normalized(once) == once);
  }
  // Targets that are not paths are left alone.
  CHECK(normalized("*") == "*");
}

TEST_CASE("paths that cannot be normalized safely are refused, unless configured", "[path]") {
  CHECK(normalized("/a%2Fb") == "REJECTED: escaped slash or backslash in path");
  CHECK(normalized("/a%2fb") == "REJECTED: escaped slash or backslash in path");
  CHECK(normalized("/a%5cb") == "REJECTED: escaped slash or backslash in path");
  CHECK(normalized("/a\\b") == "REJECTED: backslash in path");
  CHECK(normalized("/a%zzb") == "REJECTED: invalid percent-escape in path");
  CHECK(normalized("/a%2") == "REJECTED: invalid percent-escape in path");
  CHECK(normalized("/a%") == "REJECTED: invalid percent-escape in path");

  PathNormalization keep;
  keep.escapedSlashes = PathNormalization::EscapedSlashes::kKeep;
  CHECK(normalized("/a%2fb/../c", keep) == "/c");  // "a%2Fb" is one segment
  CHECK(normalized("/a%2fb", keep) == "/a%2Fb");
  PathNormalization unescape;
  unescape.escapedSlashes = PathNormalization::EscapedSlashes::kUnescape;
  CHECK(normalized("/api%2f..%2fadmin", unescape) == "/admin");
  CHECK(normalized("/a\\b", unescape) == "/a/b");

  PathNormalization noMerge;
  noMerge.mergeSlashes = false;
  CHECK(normalized("/a//b", noMerge) == "/a//b");
  CHECK(normalized("/a//../b", noMerge) == "/a/b");

  PathNormalization off;
  off.enabled = false;
  CHECK(normalized("/api/../admin", off) == "/api/../admin");
}
