#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/bootstrap.h"
#include "config/regex.h"
#include "config/retry_on.h"

namespace tether::config {

/// Where a rule document came from, for error messages and /rules.
struct Origin {
  std::string file;
  int line = 0;
  int column = 0;
};

struct EndpointConfig {
  Address address;
  std::string addressText;  // address.toString(), kept for lookups on the request path
  uint32_t weight = 1;
  Labels labels;
};

enum class Protocol { kHttp1, kHttp2, kAuto };
enum class LbPolicy { kRoundRobin, kRandom, kLeastRequest, kRingHash, kMaglev };

/// What ring_hash and maglev hash on.
struct HashKey {
  enum class Kind { kNone, kHeader, kCookie, kSourceIp } kind = Kind::kNone;
  std::string name;  // header (lower-case) or cookie name
};

struct LoadBalancerConfig {
  LbPolicy policy = LbPolicy::kRoundRobin;
  Duration slowStart{0};
  HashKey hashKey;  // "header:<name>" | "cookie:<name>" | "source_ip"
};

/// What an active health check asks: a TCP connect, an HTTP request, or the gRPC health
/// protocol (grpc.health.v1.Health/Check).
enum class HealthCheckType { kTcp, kHttp, kGrpc };

struct HealthCheckConfig {
  HealthCheckType type = HealthCheckType::kTcp;  // default: http with a path, else tcp
  std::string path;                              // http: the request target
  std::string host;         // Host / :authority of http and grpc checks; "" = the service name
  std::string grpcService;  // grpc: HealthCheckRequest.service ("" = the whole server)
  /// Statuses a healthy endpoint answers, as inclusive ranges (a single status is a range
  /// of one); empty = any 2xx.
  std::vector<std::pair<int, int>> expectedStatuses;
  Duration interval = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(1);
  uint32_t unhealthyThreshold = 3;
  uint32_t healthyThreshold = 2;
  bool operator==(const HealthCheckConfig&) const = default;
};

struct OutlierDetectionConfig {
  uint32_t consecutiveErrors = 5;
  Duration baseEjectionTime = std::chrono::seconds(30);
  uint32_t maxEjectionPercent = 10;
};

struct ServiceLimits {
  uint32_t maxConnections = 1024;
  uint32_t maxPendingRequests = 1024;
  uint32_t maxRequests = 1024;
  uint32_t maxRetries = 1024;  // the route retry budget is the finer bound
};

struct ServiceConfig {
  std::string name;
  Origin origin;
  Protocol protocol = Protocol::kHttp1;
  std::vector<EndpointConfig> endpoints;
  /// Virtual addresses (a Kubernetes ClusterIP and port): an intercepted connection to one
  /// of these, or to an endpoint, belongs to this service.
  std::vector<Address> addresses;
  std::optional<Address> dns;  // name:port, resolved on the control loop
  Duration dnsRefresh = std::chrono::seconds(5);
  LoadBalancerConfig loadBalancer;
  std::optional<HealthCheckConfig> healthCheck;
  std::optional<OutlierDetectionConfig> outlierDetection;
  ServiceLimits limits;
  std::optional<Duration> connectTimeout;  // overrides upstream.connectTimeout
  std::optional<TlsClientConfig> tls;
  FileFields tlsFiles;  // caFile, certFile, keyFile
};

enum class StringMatchKind { kExact, kPrefix, kRegex, kPresent };

struct StringMatch {
  StringMatchKind kind = StringMatchKind::kExact;
  std::string value;
  std::shared_ptr<const Regex> regex;  // compiled once, for kRegex

  bool matches(std::optional<std::string_view> candidate) const;
};

struct RouteMatch {
  std::optional<std::string> path;  // exact
  std::optional<std::string> pathPrefix;
  std::optional<std::string> pathRegexText;
  std::shared_ptr<const Regex> pathRegex;
  std::vector<std::string> methods;                          // empty = any
  std::vector<std::pair<std::string, StringMatch>> headers;  // lower-case names
  std::vector<std::pair<std::string, StringMatch>> queryParams;
  std::vector<std::pair<std::string, StringMatch>> cookies;
};

struct BackendConfig {
  std::string service;
  Labels subset;
  uint32_t weight = 1;
};

struct RetryPolicy {
  uint32_t attempts = 0;
  std::optional<Duration> perTryTimeout;
  std::vector<std::string> retryOn;
  RetryOn on;  // retryOn compiled, once per configuration
  uint32_t budgetPercent = 20;
};

enum class FailureMode { kFailfast, kFailover, kFailsafe };

struct FailsafeReply {
  int status = 200;
  std::string body;
  Labels headers;
};

/// Fault injection for resilience tests: delay and/or abort a share of requests.
struct FaultConfig {
  std::optional<Duration> delay;
  double delayPercent = 0;
  std::optional<int> abortStatus;
  double abortPercent = 0;
};

struct RouteRule {
  RouteMatch match;
  std::vector<BackendConfig> backends;
  uint32_t totalWeight = 0;
  std::optional<Duration> timeout;
  std::optional<RetryPolicy> retry;
  std::optional<FailureMode> onFailure;  // default: failover with retry, failfast without
  std::optional<FailsafeReply> failsafe;
  std::optional<FaultConfig> fault;
  Labels addRequestHeaders;
  std::vector<std::string> removeRequestHeaders;
  std::optional<std::string> prefixRewrite;
};

struct RouteConfig {
  std::string name;
  Origin origin;
  std::vector<std::string> hosts;  // lower-case; "*" matches any host
  std::vector<RouteRule> rules;
};

/// Canary tagging (OpenSergo TrafficLabelRule semantics): requests matching `match`
/// and/or falling in `percentage` carry lane `label`.
struct TrafficLabelConfig {
  std::string name;
  Origin origin;
  RouteMatch match;
  bool hasMatch = false;
  std::optional<double> percentage;  // 0..100
  std::string label;
  enum class Fallback { kUnlabelled, kNone } fallback = Fallback::kUnlabelled;
};

/// Which requests a governance rule (RateLimit, CircuitBreaker) applies to; every field
/// that is set must match. Without a target a rule applies to every request.
struct RuleTarget {
  std::optional<Direction> direction;
  std::string service;     // the routed service (outbound) or local_app (inbound)
  std::string route;       // the matched Route's name
  std::string pathPrefix;  // on the request path
};

/// A reply a protection sends instead of its default (OpenSergo HttpRequestFallbackAction).
struct FallbackReply {
  int status = 0;  // 0: the protection's default status
  std::string body;
  Labels headers;
};

enum class RateLimitAlgorithm { kTokenBucket, kSlidingWindow, kFixedWindow, kLeakyBucket };

struct RateLimitKey {
  enum class Kind { kNone, kCaller, kSourceIp, kHeader } kind = Kind::kNone;
  std::string header;  // lower-case, for kHeader
};

struct RateLimitConfig {
  std::string name;
  Origin origin;
  std::string hash;  // of the document: state survives reloads that keep it
  RuleTarget target;
  RateLimitAlgorithm algorithm = RateLimitAlgorithm::kTokenBucket;
  uint32_t limit = 0;  // requests per `per`
  Duration per = std::chrono::seconds(1);
  uint32_t burst = 0;  // token_bucket capacity (0: `limit`)
  RateLimitKey key;
  uint32_t maxKeys = 10000;  // keyed state kept (LRU); beyond: one shared bucket
  Duration maxQueueTime = std::chrono::milliseconds(0);  // leaky_bucket: longest wait
  bool global = false;              // mode: global — counters in Redis, shared by every replica
  uint32_t localFallbackLimit = 0;  // global: the per-process limit while Redis is away
  FallbackReply fallback;
};

/// Concurrency isolation (the seed's thread isolation): at most maxConcurrency requests in
/// flight per key (caller group, source, header value) among the requests the target
/// selects; one more is refused at once (503 overflow), so one caller's surge cannot
/// starve the others.
struct ConcurrencyLimitConfig {
  std::string name;
  Origin origin;
  std::string hash;
  RuleTarget target;
  uint32_t maxConcurrency = 0;
  RateLimitKey key;
  uint32_t maxKeys = 10000;
  FallbackReply fallback;
};

/// One HMAC key: its id (sent in the Authorization header), the caller it identifies, and
/// the file holding the secret.
struct HmacKeyConfig {
  std::string id;
  std::string caller;
  std::string secretFile;
  FieldPosition secretAt;
};

/// An authorization rule on the authenticated caller, path and method (any field left
/// empty matches everything).
struct AuthzRule {
  std::string caller;
  std::string pathPrefix;
  std::vector<std::string> methods;  // upper case
};

/// HmacAuth: inbound, verify signed requests (and authorize their callers); outbound, sign
/// requests with this node's key.
struct HmacAuthConfig {
  std::string name;
  Origin origin;
  std::string hash;
  Direction direction = Direction::kInbound;
  RuleTarget target;
  std::vector<HmacKeyConfig> keys;  // outbound: the first one signs (unless keyId says)
  std::string keyId;                // outbound: the key to sign with
  Duration clockSkew = std::chrono::seconds(300);
  std::vector<std::string> signedHeaders;  // lower case; host and Tether's own always added
  uint32_t maxBodyBytes = 1024 * 1024;     // body hashed in memory at most
  bool allowUnsignedPayload = false;
  bool forwardCredentials = false;    // inbound: pass the signature headers on to the app
  uint32_t nonceCacheSize = 500'000;  // >= peak requests/s x clockSkew
  /// Inbound: verified client-certificate identities (mTLS listeners) accepted as callers,
  /// like keys: a request without a signature from such a peer is that caller.
  struct Peer {
    std::string identity;  // the URI SAN, e.g. spiffe://tether.local/ns/default/sa/orders
    std::string caller;
  };
  std::vector<Peer> peers;
  std::vector<AuthzRule> allow;  // non-empty: the caller must match one
  std::vector<AuthzRule> deny;   // checked first
};

enum class BreakerStrategy { kErrorRatio, kSlowRatio, kErrorCount };

struct CircuitBreakerConfig {
  std::string name;
  Origin origin;
  std::string hash;
  RuleTarget target;
  BreakerStrategy strategy = BreakerStrategy::kErrorRatio;
  double threshold = 0.5;  // a ratio (0..1] or, for error_count, a count
  Duration slowCallThreshold = std::chrono::seconds(1);
  Duration window = std::chrono::seconds(10);
  uint32_t minRequests = 20;
  Duration openDuration = std::chrono::seconds(5);
  Duration maxOpenDuration = std::chrono::seconds(60);  // the open time grows up to this
  uint32_t halfOpenProbes = 3;
  double recoveryStep = 1.0;  // share of traffic added per interval (1: no ramp)
  Duration recoveryInterval = std::chrono::seconds(10);
  /// What counts as a failure: HTTP statuses (5xx by default), gateway errors (502-504),
  /// timeouts, resets and connect failures always; gRPC statuses when listed.
  std::vector<int> failureStatuses;      // empty: every 5xx
  std::vector<int> failureGrpcStatuses;  // e.g. 14 (UNAVAILABLE), 4 (DEADLINE_EXCEEDED)
  /// One breaker per endpoint of the target: an open endpoint is skipped by the load
  /// balancer, and only when every endpoint's breaker refuses is the request refused.
  bool perEndpoint = false;
  FallbackReply fallback;
};

/// The endpoint label that carries a lane (`lane: gray`).
inline constexpr const char* kLaneLabel = "lane";

/// One rule document as read, for /rules and /config_dump.
struct DocumentInfo {
  std::string kind;
  std::string name;
  Origin origin;
  std::string hash;  // sha256 of the document's canonical YAML
  std::string yaml;  // canonical YAML (emitted by yaml-cpp)
};

}  // namespace tether::config
