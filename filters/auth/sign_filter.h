#pragma once

#include <memory>
#include <string>

#include "filters/auth/hmac_filter.h"
#include "proxy/stream/filter.h"

namespace tether::filters {

/// Outbound HmacAuth: the first rule that applies signs the request as `keyId`. A request
/// with a body is held until the body is hashed (up to the rule's maxBodyBytes and the
/// buffer limit: beyond, 413 body_too_large, or UNSIGNED-PAYLOAD when the rule allows it);
/// a tunnel's head is signed without its bytes. Every attempt the router makes is signed
/// afresh (its own date and nonce), so a retry is never refused as a replay.
class SignFilter : public proxy::Filter, public proxy::UpstreamHook {
 public:
  explicit SignFilter(std::shared_ptr<const AuthRules> rules) : rules_(std::move(rules)) {}

  proxy::FilterStatus onRequestHeaders(proxy::RequestHead& head, bool endStream) override;
  proxy::FilterStatus onRequestData(std::string& data, bool endStream) override;
  proxy::FilterStatus onRequestTrailers(proxy::HeaderMap& trailers) override;
  void onUpstreamAttempt(proxy::RequestHead& head, std::string_view authority) override;

 private:
  /// Hashes a piece of the body; false when the request was answered (too large to sign).
  bool hash(std::string_view data, bool end);

  std::shared_ptr<const AuthRules> rules_;
  const HmacRule* signer_ = nullptr;
  std::unique_ptr<filters::hmac::Sha256> bodyHash_;  // while the body is being hashed
  std::string payloadHash_;
  uint64_t hashedBytes_ = 0;
};

using SignFilterFactory = proxy::FactoryOf<SignFilter, std::shared_ptr<const AuthRules>>;

}  // namespace tether::filters
