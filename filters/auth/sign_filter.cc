#include "filters/auth/sign_filter.h"

#include <algorithm>

#include "proxy/worker/worker.h"

namespace tether::filters {

using proxy::FilterStatus;

FilterStatus SignFilter::onRequestHeaders(proxy::RequestHead& head, bool endStream) {
  const auto& info = callbacks_->info();
  for (const auto& r : rules_->outbound) {
    if (r->signingKey && r->applies(info.service, info.route, head.pathOnly())) {
      signer_ = r.get();
      break;
    }
  }
  if (!signer_) return FilterStatus::kContinue;
  callbacks_->addUpstreamHook(*this);
  // A tunnel's bytes cannot be hashed ahead: its head is signed without them.
  if (head.upgrade || head.isConnect()) {
    payloadHash_ = filters::hmac::kUnsignedPayload;
    return FilterStatus::kContinue;
  }
  if (endStream) {
    payloadHash_ = filters::hmac::kEmptyBodyHash;
    return FilterStatus::kContinue;
  }
  // The head goes upstream once the body is hashed: held until then.
  bodyHash_ = std::make_unique<filters::hmac::Sha256>();
  return FilterStatus::kStopIteration;
}

FilterStatus SignFilter::onRequestData(std::string& data, bool endStream) {
  if (bodyHash_) hash(data, endStream);
  return FilterStatus::kContinue;
}

FilterStatus SignFilter::onRequestTrailers(proxy::HeaderMap&) {
  if (bodyHash_) hash({}, true);
  return FilterStatus::kContinue;
}

bool SignFilter::hash(std::string_view data, bool end) {
  hashedBytes_ += data.size();
  uint64_t limit = std::min<uint64_t>(signer_->config.maxBodyBytes,
                                      callbacks_->worker().bootstrap().http.bufferHighWatermark);
  if (hashedBytes_ > limit) {
    bodyHash_.reset();
    if (!signer_->config.allowUnsignedPayload) {
      callbacks_->sendLocalReply(413, "body too large to sign\n", proxy::Reason::kBodyTooLarge);
      return false;
    }
    payloadHash_ = filters::hmac::kUnsignedPayload;
  } else {
    bodyHash_->update(data);
    if (!end) return true;
    payloadHash_ = bodyHash_->finishHex();
    bodyHash_.reset();
  }
  callbacks_->continueRequest();
  return true;
}

void SignFilter::onUpstreamAttempt(proxy::RequestHead& head, std::string_view authority) {
  const HmacRule::Key& key = *signer_->signingKey;
  if (!head.authority.empty()) authority = head.authority;
  int64_t now = callbacks_->worker().clock().unixSeconds();
  // Tether's three headers go on first (replacing a previous attempt's), then the
  // signature over the request as it will be sent.
  head.headers.set(filters::hmac::kContentHeader, payloadHash_);
  head.headers.set(filters::hmac::kDateHeader, filters::hmac::formatDate(now));
  head.headers.set(filters::hmac::kNonceHeader, filters::hmac::newNonce());
  head.headers.remove("authorization");
  filters::hmac::RequestView view{head.method, head.path, authority, &head.headers};
  head.headers.add("authorization", filters::hmac::authorization(view, key.id, key.secret->get(),
                                                                 signer_->signedHeaders));
  proxy::WorkerStats& stats = callbacks_->worker().stats();
  stats.countPair(stats.auth, signer_->config.name, "signed");
}

}  // namespace tether::filters
