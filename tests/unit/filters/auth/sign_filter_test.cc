// Outbound HmacAuth signing on the fake stream and clock: the head held until the body is
// hashed, a fresh signature per attempt, the size limit.

#include "filters/auth/sign_filter.h"

#include <catch2/catch.hpp>
#include <cstdio>

#include "filters/auth/hmac.h"
#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

namespace {

struct SigningFixture {
  explicit SigningFixture(const std::string& extra = "")
      : secretFile(test::writeTempFile("s3cret-key-material")),
        f(test::serviceAndRoute("ratings") +
          test::ruleDoc("HmacAuth", "sign",
                        "{ direction: outbound, target: { service: ratings }, keyId: k1, keys: "
                        "[ { id: k1, secretFile: " +
                            secretFile + " } ], signedHeaders: [ content-type ]" + extra + " }")),
        auth(AuthRules::build(*f.config, f.state)),
        filter(auth) {
    f.cb.attach(filter);
  }
  ~SigningFixture() { std::remove(secretFile.c_str()); }

  std::string secretFile;
  FilterFixture f;
  std::shared_ptr<const AuthRules> auth;
  SignFilter filter;
};

}  // namespace

TEST_CASE("a signed request with a body is held until the body is hashed", "[filters][auth]") {
  SigningFixture s;
  auto& head = s.f.request("ratings", "/api", "POST");
  CHECK(s.filter.onRequestHeaders(head, false) == proxy::FilterStatus::kStopIteration);
  std::string part = "hello ";
  s.filter.onRequestData(part, false);
  CHECK(s.f.cb.requestContinues == 0);
  std::string rest = "world";
  s.filter.onRequestData(rest, true);
  CHECK(s.f.cb.requestContinues == 1);
  REQUIRE(s.f.cb.hooks.size() == 1);
  s.f.cb.runUpstreamHooks(head, "ratings");
  CHECK(proxy::view(head.headers.get(filters::hmac::kContentHeader)) ==
        filters::hmac::sha256Hex("hello world"));
  // The date is the worker's clock's.
  CHECK(proxy::view(head.headers.get(filters::hmac::kDateHeader)) ==
        filters::hmac::formatDate(s.f.clock.unixSeconds()));
  CHECK(head.headers.get("authorization") != nullptr);
}

TEST_CASE("every attempt is signed afresh: a new date and nonce, one Authorization",
          "[filters][auth]") {
  SigningFixture s;
  auto& head = s.f.request("ratings");
  CHECK(s.filter.onRequestHeaders(head, true) == proxy::FilterStatus::kContinue);
  s.f.cb.runUpstreamHooks(head, "ratings");
  std::string nonce1(*head.headers.get(filters::hmac::kNonceHeader));
  std::string auth1(*head.headers.get("authorization"));
  CHECK(proxy::view(head.headers.get(filters::hmac::kContentHeader)) ==
        filters::hmac::kEmptyBodyHash);
  s.f.clock.advance(std::chrono::seconds(2));
  s.f.cb.runUpstreamHooks(head, "ratings");
  CHECK(std::string(*head.headers.get(filters::hmac::kNonceHeader)) != nonce1);
  CHECK(std::string(*head.headers.get("authorization")) != auth1);
  size_t authorizations = 0;
  for (const auto& field : head.headers) authorizations += field.name == "authorization";
  CHECK(authorizations == 1);
}

TEST_CASE("a body over maxBodyBytes is 413, or UNSIGNED-PAYLOAD when allowed", "[filters][auth]") {
  SigningFixture strict(", maxBodyBytes: 4");
  auto& head = strict.f.request("ratings", "/", "POST");
  CHECK(strict.filter.onRequestHeaders(head, false) == proxy::FilterStatus::kStopIteration);
  std::string body = "too long";
  strict.filter.onRequestData(body, true);
  REQUIRE(strict.f.cb.localReplies.size() == 1);
  CHECK(strict.f.cb.localReplies[0].status == 413);
  CHECK(strict.f.cb.localReplies[0].reason == proxy::Reason::kBodyTooLarge);

  SigningFixture lax(", maxBodyBytes: 4, allowUnsignedPayload: true");
  auto& h2 = lax.f.request("ratings", "/", "POST");
  CHECK(lax.filter.onRequestHeaders(h2, false) == proxy::FilterStatus::kStopIteration);
  lax.filter.onRequestData(body, true);
  CHECK(lax.f.cb.requestContinues == 1);
  lax.f.cb.runUpstreamHooks(h2, "ratings");
  CHECK(proxy::view(h2.headers.get(filters::hmac::kContentHeader)) ==
        filters::hmac::kUnsignedPayload);
}
