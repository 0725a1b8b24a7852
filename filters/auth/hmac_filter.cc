#include "filters/auth/hmac_filter.h"

#include <openssl/crypto.h>

#include <chrono>
#include <map>
#include <mutex>

#include "proxy/common/log.h"
#include "proxy/worker/worker.h"

namespace tether::filters {

namespace {

bool pathStartsWith(std::string_view path, std::string_view prefix) {
  return path.substr(0, prefix.size()) == prefix;
}

bool validNonce(std::string_view n) {
  if (n.size() < 16 || n.size() > 128) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

}  // namespace

const HmacRule::Key* HmacRule::find(std::string_view id) const {
  for (const auto& k : keys) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

bool HmacRule::authorized(std::string_view caller, std::string_view path,
                          std::string_view method) const {
  auto matches = [&](const config::AuthzRule& r) {
    if (!r.caller.empty() && r.caller != caller) return false;
    if (!r.pathPrefix.empty() && !pathStartsWith(path, r.pathPrefix)) return false;
    if (!r.methods.empty() &&
        std::find(r.methods.begin(), r.methods.end(), method) == r.methods.end()) {
      return false;
    }
    return true;
  };
  for (const auto& r : config.deny) {
    if (matches(r)) return false;
  }
  if (config.allow.empty()) return true;
  for (const auto& r : config.allow) {
    if (matches(r)) return true;
  }
  return false;
}

bool HmacRule::applies(std::string_view service, std::string_view route,
                       std::string_view path) const {
  return Governance::matches(config.target, {config.direction, service, route, path});
}

std::shared_ptr<const AuthRules> AuthRules::build(const config::Config& config,
                                                  filters::SharedState& state) {
  auto rules = std::make_shared<AuthRules>();
  for (const auto& c : config.hmacAuths) {
    auto rule = std::make_shared<HmacRule>();
    rule->config = c;
    for (const auto& k : c.keys) {
      std::string error;
      const filters::hmac::SecretStore::Slot* slot = state.secrets.load(k.secretFile, error);
      if (!slot) {
        TETHER_LOG(kError, "HmacAuth " + c.name + ": key " + k.id + " left out: " + error);
        continue;
      }
      rule->keys.push_back({k.id, k.caller, slot});
    }
    rule->signedHeaders = filters::hmac::signedHeaderNames(c.signedHeaders);
    if (c.direction == config::Direction::kInbound) {
      rule->nonces = state.nonceCaches.get(
          c.name, [&] { return std::make_shared<filters::hmac::NonceCache>(c.nonceCacheSize); });
      rules->inbound.push_back(std::move(rule));
    } else {
      rule->signingKey = c.keyId.empty() ? (rule->keys.empty() ? nullptr : &rule->keys.front())
                                         : rule->find(c.keyId);
      rules->outbound.push_back(std::move(rule));
    }
  }
  return rules;
}

proxy::FilterStatus HmacVerifyFilter::onRequestHeaders(proxy::RequestHead& head, bool endStream) {
  std::string_view path = head.pathOnly();
  for (const auto& r : rules_->inbound) {
    if (r->applies(config::kLocalAppService, "", path)) {
      rule_ = r.get();
      break;
    }
  }
  if (!rule_) return proxy::FilterStatus::kContinue;
  head_ = &head;
  // A peer that proved itself with a client certificate (mTLS) and does not sign is the
  // caller its identity names, like a key id.
  const std::string& peer = callbacks_->info().peerIdentity;
  if (!peer.empty() && !head.headers.get("authorization")) {
    for (const auto& p : rule_->config.peers) {
      if (p.identity == peer) return acceptPeer(head, p.caller);
    }
  }
  if (!verifyHead(head, endStream)) return proxy::FilterStatus::kStopIteration;
  if (endStream || declaredHash_ == filters::hmac::kUnsignedPayload) {
    // Nothing more to hash: an empty body must be the one signed.
    static const std::array<uint8_t, 32> kEmpty = [] {
      std::array<uint8_t, 32> e{};
      filters::hmac::unhex(filters::hmac::kEmptyBodyHash, e.data(), e.size());
      return e;
    }();
    uint8_t declared[32];
    if (endStream && declaredHash_ != filters::hmac::kUnsignedPayload &&
        (!filters::hmac::unhex(declaredHash_, declared, 32) ||
         CRYPTO_memcmp(declared, kEmpty.data(), 32) != 0)) {
      reject("bad_signature", 401, proxy::Reason::kUnauthenticated);
      return proxy::FilterStatus::kStopIteration;
    }
    return accept(head) ? proxy::FilterStatus::kContinue : proxy::FilterStatus::kStopIteration;
  }
  // The body decides: nothing goes on until it is hashed and matched.
  body_ = std::make_unique<filters::hmac::Sha256>();
  bodyLimit_ = std::min<uint64_t>(rule_->config.maxBodyBytes,
                                  callbacks_->worker().bootstrap().http.bufferHighWatermark);
  holding_ = true;
  return proxy::FilterStatus::kStopIteration;
}

bool HmacVerifyFilter::verifyHead(proxy::RequestHead& head, bool endStream) {
  const proxy::HeaderString* authorization = head.headers.get("authorization");
  if (!authorization) {
    reject("missing", 401, proxy::Reason::kUnauthenticated);
    return false;
  }
  // Two credentials are one too many: which one a verifier and the app would each read is
  // anyone's guess (SigV4 verifiers refuse them too). The same for the signature's headers.
  for (std::string_view name : {std::string_view("authorization"), filters::hmac::kDateHeader,
                                filters::hmac::kNonceHeader, filters::hmac::kContentHeader}) {
    if (head.headers.count(name) > 1) {
      reject("malformed", 401, proxy::Reason::kUnauthenticated);
      return false;
    }
  }
  thread_local filters::hmac::Authorization auth;  // reused: no allocation per request
  const proxy::HeaderString* date = head.headers.get(filters::hmac::kDateHeader);
  const proxy::HeaderString* nonce = head.headers.get(filters::hmac::kNonceHeader);
  const proxy::HeaderString* content = head.headers.get(filters::hmac::kContentHeader);
  if (nonce) rule_->nonces->prefetch(*nonce);
  uint8_t digest[32];
  if (!filters::hmac::parseAuthorization(*authorization, auth) || !date || !nonce || !content ||
      !validNonce(*nonce) ||
      (*content != filters::hmac::kUnsignedPayload &&
       !filters::hmac::unhex(*content, digest, sizeof(digest)))) {
    reject("malformed", 401, proxy::Reason::kUnauthenticated);
    return false;
  }
  // Every header the rule requires must be signed (host and Tether's own included).
  for (const auto& required : rule_->signedHeaders) {
    if (!std::binary_search(auth.signedHeaders.begin(), auth.signedHeaders.end(), required)) {
      reject("malformed", 401, proxy::Reason::kUnauthenticated);
      return false;
    }
  }
  if (*content == filters::hmac::kUnsignedPayload && !rule_->config.allowUnsignedPayload) {
    reject("malformed", 401, proxy::Reason::kUnauthenticated);
    return false;
  }
  key_ = rule_->find(auth.keyId);
  if (!key_) {
    reject("unknown_key", 401, proxy::Reason::kUnauthenticated);
    return false;
  }
  std::optional<int64_t> when = filters::hmac::parseDate(*date);
  if (!when) {
    reject("malformed", 401, proxy::Reason::kUnauthenticated);
    return false;
  }
  int64_t now = callbacks_->worker().clock().unixSeconds();
  int64_t skew = std::chrono::duration_cast<std::chrono::seconds>(rule_->config.clockSkew).count();
  if (*when < now - skew || *when > now + skew) {
    reject("expired", 401, proxy::Reason::kUnauthenticated);
    return false;
  }
  filters::hmac::RequestView view{head.method, head.path, head.authority, &head.headers};
  std::array<uint8_t, 32> expected =
      filters::hmac::expectedSignature(view, key_->id, key_->secret->get(), auth.signedHeaders);
  // Fixed length, constant time.
  if (CRYPTO_memcmp(expected.data(), auth.signature.data(), expected.size()) != 0) {
    reject("bad_signature", 401, proxy::Reason::kUnauthenticated);
    return false;
  }
  // A replay is refused before its body is read; the nonce itself is remembered only once
  // the whole request checks out, so a forged request cannot burn a genuine nonce. (Without
  // a body to wait for, accept() follows at once and its insertion finds a replay.)
  bool bodyFollows = !endStream && *content != filters::hmac::kUnsignedPayload;
  if (bodyFollows && rule_->nonces->contains(*nonce, now)) {
    reject("replayed", 401, proxy::Reason::kUnauthenticated);
    return false;
  }
  if (!rule_->authorized(key_->caller, head.pathOnly(), head.method)) {
    callbacks_->info().caller = key_->caller;
    reject("forbidden", 403, proxy::Reason::kForbidden);
    return false;
  }
  declaredHash_ = *content;
  expiresAt_ = *when + skew;
  return true;
}

proxy::FilterStatus HmacVerifyFilter::acceptPeer(proxy::RequestHead& head,
                                                 const std::string& caller) {
  proxy::StreamInfo& info = callbacks_->info();
  info.caller = caller;
  if (!rule_->authorized(caller, head.pathOnly(), head.method)) {
    reject("forbidden", 403, proxy::Reason::kForbidden);
    return proxy::FilterStatus::kStopIteration;
  }
  info.auth = "mtls";
  proxy::WorkerStats& stats = callbacks_->worker().stats();
  stats.countPair(stats.auth, rule_->config.name, "mtls");
  stats.countPair(stats.callers, rule_->config.name, caller);
  head.headers.set(filters::hmac::kCallerHeader, caller);
  return proxy::FilterStatus::kContinue;
}

bool HmacVerifyFilter::accept(proxy::RequestHead& head) {
  const proxy::HeaderString* nonce = head.headers.get(filters::hmac::kNonceHeader);
  switch (rule_->nonces->add(*nonce, expiresAt_, callbacks_->worker().clock().unixSeconds())) {
    case filters::hmac::NonceCache::Result::kAdded:
      break;
    case filters::hmac::NonceCache::Result::kReplayed:  // the same nonce, verified meanwhile
      reject("replayed", 401, proxy::Reason::kUnauthenticated);
      return false;
    case filters::hmac::NonceCache::Result::kFull:
      // Fail closed: a request that cannot be remembered could be replayed.
      reject("nonce_cache_full", 503, proxy::Reason::kOverflow);
      return false;
  }
  proxy::StreamInfo& info = callbacks_->info();
  info.caller = key_->caller;
  info.auth = "ok";
  proxy::WorkerStats& stats = callbacks_->worker().stats();
  stats.countPair(stats.auth, rule_->config.name, "ok");
  stats.countPair(stats.callers, rule_->config.name, key_->caller);
  // The app learns who called; whatever the caller claimed itself is replaced. The
  // signature has done its work: like Envoy's jwt_authn, the credentials stop here.
  head.headers.set(filters::hmac::kCallerHeader, key_->caller);
  if (!rule_->config.forwardCredentials) {
    // One pass over the fields for the four names.
    std::erase_if(head.headers.fields(), [](const proxy::HeaderMap::Field& f) {
      return f.name == "authorization" || f.name == filters::hmac::kDateHeader ||
             f.name == filters::hmac::kNonceHeader || f.name == filters::hmac::kContentHeader;
    });
  }
  return true;
}

proxy::FilterStatus HmacVerifyFilter::onRequestData(std::string& data, bool endStream) {
  if (!holding_) return proxy::FilterStatus::kContinue;
  bodyBytes_ += data.size();
  if (bodyBytes_ > bodyLimit_) {
    holding_ = false;
    reject("body_too_large", 413, proxy::Reason::kBodyTooLarge);
    return proxy::FilterStatus::kStopIteration;
  }
  body_->update(data);
  if (endStream) finishBody();
  return proxy::FilterStatus::kContinue;
}

proxy::FilterStatus HmacVerifyFilter::onRequestTrailers(proxy::HeaderMap&) {
  if (holding_) finishBody();
  return proxy::FilterStatus::kContinue;
}

void HmacVerifyFilter::finishBody() {
  holding_ = false;
  std::string actual = body_->finishHex();
  body_.reset();
  // The declared hash was signed; the body must be the one it names (as bytes: the hex may
  // be in either case).
  uint8_t a[32], b[32];
  if (!filters::hmac::unhex(actual, a, 32) || !filters::hmac::unhex(declaredHash_, b, 32) ||
      CRYPTO_memcmp(a, b, 32) != 0) {
    reject("bad_signature", 401, proxy::Reason::kUnauthenticated);
    return;
  }
  if (accept(*head_)) callbacks_->continueRequest();
}

void HmacVerifyFilter::reject(std::string_view result, int status, proxy::Reason reason) {
  proxy::Worker& worker = callbacks_->worker();
  worker.stats().countPair(worker.stats().auth, rule_->config.name, result);
  callbacks_->info().auth = result;
  TETHER_LOG(kDebug, "HmacAuth " + rule_->config.name + ": refused (" + std::string(result) + ")");
  proxy::HeaderMap extra;
  if (status == 401) extra.add("www-authenticate", std::string(filters::hmac::kScheme));
  callbacks_->sendLocalReply(status, std::string(proxy::reasonName(reason)) + "\n", reason, &extra);
}

}  // namespace tether::filters
