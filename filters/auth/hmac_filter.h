#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "filters/auth/hmac.h"
#include "filters/common/shared_state.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// One HmacAuth rule, ready to use: its keys' secrets and (inbound) the nonces it has seen.
/// Shared read-only by every worker.
struct HmacRule {
  struct Key {
    std::string id;
    std::string caller;
    const filters::hmac::SecretStore::Slot* secret;
  };
  config::HmacAuthConfig config;
  std::vector<Key> keys;
  std::vector<std::string> signedHeaders;             // what outbound signatures cover
  const Key* signingKey = nullptr;                    // outbound
  std::shared_ptr<filters::hmac::NonceCache> nonces;  // inbound; kept across reloads by rule name

  const Key* find(std::string_view id) const;
  /// Deny rules first; then, when there are allow rules, one must match.
  bool authorized(std::string_view caller, std::string_view path, std::string_view method) const;
  /// Whether the rule's target takes a request of `service` / `route` to `path` (the one
  /// target matching every rule kind uses, Governance::matches).
  bool applies(std::string_view service, std::string_view route, std::string_view path) const;
};

/// Every HmacAuth rule of a snapshot, by direction.
struct AuthRules {
  std::vector<std::shared_ptr<const HmacRule>> inbound;
  std::vector<std::shared_ptr<const HmacRule>> outbound;
  /// Secrets come from SecretStore (already checked by the server before a config is
  /// accepted); a key whose file cannot be read now is left out and logged.
  static std::shared_ptr<const AuthRules> build(const config::Config& config,
                                                filters::SharedState& state);
};

/// Inbound: verifies TETHER-HMAC-SHA256 signatures and authorizes the caller, before
/// anything reaches the local app. A request with a body is held (not forwarded) until the
/// body has been hashed and matched; the body is buffered up to the rule's maxBodyBytes.
class HmacVerifyFilter : public proxy::Filter {
 public:
  explicit HmacVerifyFilter(std::shared_ptr<const AuthRules> rules) : rules_(std::move(rules)) {}

  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  proxy::FilterStatus onRequestData(std::string& data, bool endStream) override;
  proxy::FilterStatus onRequestTrailers(proxy::HeaderMap& trailers) override;

 private:
  /// Headers check out: the signature, the clock, the nonce not seen, the caller allowed.
  bool verifyHead(proxy::RequestHead& head, bool endStream);
  /// The body matched (or was not signed): remember the nonce, hand the caller on.
  bool accept(proxy::RequestHead& head);
  /// A peer authenticated by its client certificate: authorize, hand the caller on.
  proxy::FilterStatus acceptPeer(proxy::RequestHead& head, const std::string& caller);
  void reject(std::string_view result, int status, proxy::Reason reason);
  void finishBody();

  std::shared_ptr<const AuthRules> rules_;
  const HmacRule* rule_ = nullptr;
  const HmacRule::Key* key_ = nullptr;
  proxy::RequestHead* head_ = nullptr;
  std::unique_ptr<filters::hmac::Sha256> body_;  // while a signed body is being hashed
  std::string declaredHash_;
  uint64_t bodyBytes_ = 0;
  uint64_t bodyLimit_ = 0;
  int64_t expiresAt_ = 0;  // the nonce is remembered until then
  bool holding_ = false;   // headers held until the body is verified
};

using HmacVerifyFilterFactory =
    proxy::FactoryOf<HmacVerifyFilter, std::shared_ptr<const AuthRules>>;

}  // namespace tether::filters
