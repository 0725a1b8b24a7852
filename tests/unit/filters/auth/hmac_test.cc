// The TETHER-HMAC-SHA256 signature: canonicalization, round trips, and that no single
// change to a signed request goes unnoticed.

#include "filters/auth/hmac.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

using namespace tether::proxy;
using namespace tether::filters;
using namespace tether::filters::hmac;

namespace {

/// A request as it travels: what the verifier sees.
struct Request {
  std::string method = "POST";
  std::string target = "/api/orders?b=2&a=1";
  std::string host = "ratings.default:8080";
  HeaderMap headers;
  std::string body = "{\"item\":42}";
};

Request signedRequest(const std::string& secret, const std::string& keyId = "orders-2026") {
  Request r;
  r.headers.add("content-type", "application/json");
  r.headers.add("x-trace", "abc123");
  RequestView view{r.method, r.target, r.host, &r.headers};
  Signature s = sign(view, keyId, HmacKey(secret), {"content-type"}, sha256Hex(r.body),
                     1'795'000'000, "0123456789abcdef0123456789abcdef");
  r.headers.add("authorization", s.authorization);
  r.headers.add(std::string(kDateHeader), s.date);
  r.headers.add(std::string(kNonceHeader), s.nonce);
  r.headers.add(std::string(kContentHeader), s.contentSha256);
  return r;
}

/// The verifier's checks, as the inbound filter makes them (minus clock and nonce).
bool verifies(const Request& r, const std::string& secret, const std::string& keyId) {
  const HeaderString* a = r.headers.get("authorization");
  Authorization auth;
  if (!a || !parseAuthorization(*a, auth) || auth.keyId != keyId) return false;
  for (const auto& required : signedHeaderNames({"content-type"})) {
    if (!std::binary_search(auth.signedHeaders.begin(), auth.signedHeaders.end(), required)) {
      return false;
    }
  }
  RequestView view{r.method, r.target, r.host, &r.headers};
  auto expected = expectedSignature(view, keyId, HmacKey(secret), auth.signedHeaders);
  if (CRYPTO_memcmp(expected.data(), auth.signature.data(), 32) != 0) return false;
  const HeaderString* content = r.headers.get(kContentHeader);
  return content && std::string_view(*content) == sha256Hex(r.body);
}

}  // namespace

TEST_CASE("canonical paths", "[hmac]") {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"", "/"},
      {"/", "/"},
      {"/a/b", "/a/b"},
      {"/a/b/", "/a/b/"},
      {"/a/../b", "/b"},
      {"/a/./b", "/a/b"},
      {"/a/b/..", "/a/"},
      {"/../../a", "/a"},
      {"/a/%2E%2E/b", "/b"},
      {"/a%2fb", "/a%2Fb"},
      {"/%7euser", "/~user"},
      {"/a b", "/a%20b"},
      {"/caf%C3%A9", "/caf%C3%A9"},
      {"/a+b", "/a%2Bb"},
      {"/100%", "/100%25"},
      {"/a//b", "/a//b"},
      {"/p?x=1", "/p"},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    CHECK(canonicalPath(c.in) == c.out);
  }
}

TEST_CASE("canonical queries", "[hmac]") {
  CHECK(canonicalQuery("/p") == "");
  CHECK(canonicalQuery("/p?") == "");
  CHECK(canonicalQuery("/p?b=2&a=1") == "a=1&b=2");
  CHECK(canonicalQuery("/p?a=2&a=1") == "a=1&a=2");
  CHECK(canonicalQuery("/p?flag&a=1") == "a=1&flag=");
  CHECK(canonicalQuery("/p?q=a%20b&r=a+b") == "q=a%20b&r=a%2Bb");
  CHECK(canonicalQuery("/p?%61=%7e") == "a=~");
  CHECK(canonicalQuery("/p?a=1&&b=2") == "a=1&b=2");
  CHECK(canonicalQuery("/p?k=v#frag") == "k=v");
}

TEST_CASE("canonical headers: case, whitespace, repeated fields", "[hmac]") {
  HeaderMap h;
  h.add("x-a", "  one   two\t three ");
  h.add("x-b", "1");
  h.add("x-b", "2");
  RequestView view{"GET", "/", "svc", &h};
  std::string c = canonicalRequest(view, {"host", "x-a", "x-b", "x-missing"}, "HASH");
  CHECK(c ==
        "GET\n/\n\nhost:svc\nx-a:one two three\nx-b:1,2\nx-missing:\n\nhost;x-a;x-b;x-missing\n"
        "HASH");
}

TEST_CASE("signed header names are lower case, sorted, with host and Tether's own", "[hmac]") {
  CHECK(signedHeaderNames({"Content-Type", "host"}) ==
        std::vector<std::string>{"content-type", "host", "x-tether-content-sha256", "x-tether-date",
                                 "x-tether-nonce"});
}

TEST_CASE("the Authorization header parses strictly", "[hmac]") {
  std::string sig(64, 'a');
  Authorization a;
  CHECK(parseAuthorization("TETHER-HMAC-SHA256 keyId=k1, signedHeaders=host;x-a, signature=" + sig,
                           a));
  CHECK(a.keyId == "k1");
  CHECK(a.signedHeaders == std::vector<std::string>{"host", "x-a"});
  const std::string bad[] = {
      "",
      "Bearer x",
      "TETHER-HMAC-SHA256",
      "TETHER-HMAC-SHA256 keyId=k1, signedHeaders=host",
      "TETHER-HMAC-SHA256 keyId=k1, signedHeaders=host, signature=abc",
      "TETHER-HMAC-SHA256 keyId=k1, signedHeaders=x-a;host, signature=" + sig,
      "TETHER-HMAC-SHA256 keyId=k1, signedHeaders=Host, signature=" + sig,
      "TETHER-HMAC-SHA256 keyId=k1, signedHeaders=host;;x, signature=" + sig,
      "TETHER-HMAC-SHA256 keyId=k1, keyId=k2, signedHeaders=host, signature=" + sig,
      "TETHER-HMAC-SHA256 keyId=k1, signedHeaders=host, signature=" + sig + ", extra=1",
      "TETHER-HMAC-SHA256 keyId=, signedHeaders=host, signature=" + sig,
  };
  for (const auto& b : bad) {
    INFO(b);
    Authorization out;
    CHECK_FALSE(parseAuthorization(b, out));
  }
  // Reused (the verifier keeps one per thread): nothing of the last header stays behind.
  CHECK(parseAuthorization(
      "TETHER-HMAC-SHA256 keyId=a-longer-key-id, signedHeaders=a;b;c, signature=" + sig, a));
  CHECK(a.signedHeaders == std::vector<std::string>{"a", "b", "c"});
  CHECK(parseAuthorization("TETHER-HMAC-SHA256 keyId=k2, signedHeaders=host, signature=" + sig, a));
  CHECK(a.keyId == "k2");
  CHECK(a.signedHeaders == std::vector<std::string>{"host"});
}

TEST_CASE("dates round-trip and malformed ones are refused", "[hmac]") {
  CHECK(formatDate(0) == "19700101T000000Z");
  CHECK(parseDate("20261126T153000Z") == 1'795'707'000);
  CHECK(formatDate(1'795'707'000) == "20261126T153000Z");
  // The last date parsed is remembered: a different one after it is parsed anew.
  CHECK(parseDate("20261126T153000Z") == 1'795'707'000);
  CHECK(parseDate("20261126T153001Z") == 1'795'707'001);
  CHECK(parseDate("20261126T153000Z") == 1'795'707'000);
  for (const char* bad : {"", "20261126T153000", "2026-11-26T15:30:00Z", "20261326T153000Z",
                          "20261126X153000Z", "2026112aT153000Z"}) {
    INFO(bad);
    CHECK_FALSE(parseDate(bad).has_value());
  }
}

TEST_CASE("a signed request verifies; every single change to it is refused", "[hmac]") {
  const std::string secret = "s3cret-key-material";
  Request good = signedRequest(secret);
  REQUIRE(verifies(good, secret, "orders-2026"));
  CHECK_FALSE(verifies(good, "another-secret", "orders-2026"));

  int mutations = 0;
  auto mutateEach = [&](auto&& field) {
    std::string original(field(good));
    for (size_t i = 0; i < original.size(); ++i) {
      Request r = good;
      auto& t = field(r);
      t[i] = static_cast<char>(t[i] ^ 1);
      INFO("byte " << i << " of \"" << original << "\"");
      CHECK_FALSE(verifies(r, secret, "orders-2026"));
      ++mutations;
    }
  };
  mutateEach([](Request& r) -> std::string& { return r.method; });
  mutateEach([](Request& r) -> std::string& { return r.target; });
  mutateEach([](Request& r) -> std::string& { return r.host; });
  mutateEach([](Request& r) -> std::string& { return r.body; });
  for (size_t f = 0; f < good.headers.size(); ++f) {
    std::string_view name = good.headers.fields()[f].name;
    if (name == "x-trace") continue;  // not signed: free to change
    mutateEach([f](Request& r) -> HeaderString& { return r.headers.fields()[f].value; });
  }
  CHECK(mutations > 300);
  // Dropping a signed header, adding a second value to it, or a byte more in the body.
  Request dropped = good;
  dropped.headers.remove("content-type");
  CHECK_FALSE(verifies(dropped, secret, "orders-2026"));
  Request doubled = good;
  doubled.headers.add("content-type", "text/plain");
  CHECK_FALSE(verifies(doubled, secret, "orders-2026"));
  Request longer = good;
  longer.body += " ";
  CHECK_FALSE(verifies(longer, secret, "orders-2026"));
  // The unsigned header may change.
  Request traced = good;
  traced.headers.set("x-trace", "other");
  CHECK(verifies(traced, secret, "orders-2026"));
}

TEST_CASE("thousands of random requests round-trip", "[hmac]") {
  std::mt19937 rng(7);
  auto pick = [&](std::string_view alphabet, size_t maxLen) {
    std::string s(rng() % (maxLen + 1), ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
  };
  const std::string_view pathChars = "abcXYZ019-_.~/%+ =&?é";
  for (int i = 0; i < 3000; ++i) {
    Request r;
    r.method = i % 3 ? "GET" : "PUT";
    r.target = "/";
    r.target += pick(pathChars, 40);
    r.host = "svc";
    r.host += std::to_string(i % 7);
    r.body = pick("abc\n\0xyz", 200);
    r.headers.add("content-type", pick("abc /;=", 20));
    std::string secret = pick("abcdefghijklmnop", 40);
    secret += 'k';
    std::string keyId = "k";
    keyId += std::to_string(i);
    RequestView view{r.method, r.target, r.host, &r.headers};
    Signature s = sign(view, keyId, HmacKey(secret), {"content-type"}, sha256Hex(r.body),
                       1'795'000'000 + i, newNonce());
    r.headers.add("authorization", s.authorization);
    r.headers.add(std::string(kDateHeader), s.date);
    r.headers.add(std::string(kNonceHeader), s.nonce);
    r.headers.add(std::string(kContentHeader), s.contentSha256);
    INFO(r.target);
    REQUIRE(verifies(r, secret, keyId));
  }
}

TEST_CASE("the nonce cache refuses replays, forgets expired nonces, fails closed when full",
          "[hmac]") {
  NonceCache cache(16 * 4);  // 4 per shard
  CHECK(cache.add("n1", 100, 50) == NonceCache::Result::kAdded);
  CHECK(cache.add("n1", 100, 60) == NonceCache::Result::kReplayed);
  CHECK(cache.contains("n1", 60));
  CHECK_FALSE(cache.contains("n1", 101));
  // Once its window is over, the nonce is forgotten (a replay would fail the clock check).
  CHECK(cache.add("n1", 300, 101) == NonceCache::Result::kAdded);
  int added = 0, full = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = cache.add("nonce-" + std::to_string(i), 500, 200);
    added += r == NonceCache::Result::kAdded;
    full += r == NonceCache::Result::kFull;
  }
  // 64 planned, 128 slots: some room beyond the plan, never beyond the slots.
  CHECK(added >= 64);
  CHECK(added <= 128);
  CHECK(full == 200 - added);
  CHECK(cache.size() <= 128);
  // Later, the expired ones make room again.
  CHECK(cache.add("fresh", 900, 600) == NonceCache::Result::kAdded);
}

TEST_CASE("HMAC-SHA256 matches RFC 4231, short and long keys", "[hmac]") {
  auto macHex = [](const std::string& key, const std::string& data) {
    auto m = HmacKey(key).mac(data);
    return hex(m.data(), m.size());
  };
  CHECK(macHex(std::string(20, '\x0b'), "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(macHex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(
      macHex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First") ==
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
