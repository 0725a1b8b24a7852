#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/address.h"
#include "config/duration.h"

namespace tether::config {

enum class Direction { kInbound, kOutbound };
const char* toString(Direction d);

using Labels = std::map<std::string, std::string>;

struct Node {
  std::string name;     // default: hostname
  std::string service;  // the local app's service name
  Labels labels;
  /// Where other sidecars reach this instance (registered with the control plane once the
  /// local app is ready). Default: the first inbound listener's address, unless it is a
  /// wildcard (0.0.0.0, ::), in which case nothing is registered.
  std::optional<Address> address;
  bool operator==(const Node&) const = default;
};

/// TLS termination on a listener: certificate chain and key (PEM files, re-read when they
/// change).
/// Where a field that names a file sits in its source: errors found when the file is read
/// (at start, on reload, by `tether validate`) point there.
struct FieldPosition {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;  // "listeners[1].tls.certFile"
  bool operator==(const FieldPosition&) const = default;
};
/// Positions of the file-naming fields of one block, by the file path each names.
using FileFields = std::map<std::string, FieldPosition>;

struct TlsServerConfig {
  std::string certFile;
  std::string keyFile;
  bool required = true;  // false: plaintext clients are served too (detected by first byte)
  /// Mutual TLS: clients' certificates are verified against this CA bundle; their URI SAN
  /// (a SPIFFE ID) becomes the connection's peer identity.
  std::string caFile;
  bool requireClientCert = true;  // with caFile: a client without a certificate is refused
  bool operator==(const TlsServerConfig&) const = default;
};

/// TLS origination to a service's endpoints; certFile/keyFile present a client certificate
/// (mTLS), caFile verifies the server (required: Tether never skips verification).
struct TlsClientConfig {
  std::string sni;  // server name sent and verified; empty: no SNI, the IP is verified
  std::string caFile;
  std::string certFile;
  std::string keyFile;
  std::string id;  // all of the above in one string (set by the loader): pool identity
  bool operator==(const TlsClientConfig&) const = default;
};

/// What a listener speaks. `auto` tells HTTP/2 (the connection preface) from HTTP/1.x by
/// the first bytes.
enum class ListenerProtocol { kAuto, kHttp1, kHttp2 };

/// Protocol detection on a listener that has somewhere to send raw TCP.
struct DetectConfig {
  Duration timeout = std::chrono::milliseconds(100);  // no bytes by then: raw TCP
  /// Destination ports that skip detection (server-speaks-first protocols): MySQL,
  /// PostgreSQL, Redis, MongoDB, Memcached, Kafka, ZooKeeper, AMQP, NATS, SMTP, Oracle, MSSQL.
  std::vector<uint32_t> skipPorts = {3306, 5432, 6379, 27017, 11211, 9092,
                                     2181, 5672, 4222, 25,    1521,  1433};
  bool operator==(const DetectConfig&) const = default;
};

struct ListenerConfig {
  std::string name;
  Address address;
  Direction direction = Direction::kOutbound;
  bool originalDestination = false;
  /// An outbound request whose Host names no route and whose original destination is no
  /// Service's: passed through to that destination (counted), or refused 502 no_route.
  enum class Unknown { kPassthrough, kDeny } unknownDestinations = Unknown::kPassthrough;
  uint32_t maxConnections = 100'000;  // per listener, all workers together
  ListenerProtocol protocol = ListenerProtocol::kAuto;
  std::optional<TlsServerConfig> tls;
  FileFields tlsFiles;  // certFile, keyFile, caFile
  /// Where connections that are not HTTP go, as raw TCP: a Service's endpoints. Without it
  /// (and without originalDestination) every connection is HTTP.
  std::string tcpService;
  Duration tcpIdleTimeout = std::chrono::hours(1);  // raw TCP with no byte either way
  DetectConfig detect;
  bool operator==(const ListenerConfig&) const = default;
};

/// How request paths are put into one form before routing and every policy
/// (proxy/codec/path_normalizer.h; docs/configuration.md, http.pathNormalization).
struct PathNormalization {
  enum class EscapedSlashes { kReject, kKeep, kUnescape };
  bool enabled = true;       // decode unreserved escapes, remove dot segments
  bool mergeSlashes = true;  // "//" -> "/"
  EscapedSlashes escapedSlashes = EscapedSlashes::kReject;  // %2F, %5C, raw backslash
  bool operator==(const PathNormalization&) const = default;
};

/// Downstream HTTP/1.1 limits, with the safe defaults documented in docs/configuration.md.
struct HttpLimits {
  uint32_t maxRequestHeadersBytes = 60 * 1024;                // over it: 431
  uint32_t maxRequestHeaders = 100;                           // over it: 431
  uint64_t maxRequestBodyBytes = 0;                           // 0: unlimited; over it: 413
  Duration requestHeadersTimeout = std::chrono::seconds(10);  // slowloris guard: 408
  Duration idleTimeout = std::chrono::seconds(300);  // keep-alive connection with no stream
  uint32_t bufferHighWatermark = 1024 * 1024;        // pause the sender above this
  uint32_t bufferLowWatermark = 256 * 1024;          // resume it below this
  bool addXForwardedFor = true;                      // append the peer to x-forwarded-for
  bool addVia = true;                                // add "Via: 1.1 tether"
  PathNormalization pathNormalization;
  // Request header fields whose name holds an underscore: some servers fold `_` into `-`, so
  // `content_length` could be read as a second Content-Length (nginx drops them by default).
  enum class Underscores { kDrop, kAllow, kReject };
  Underscores headersWithUnderscores = Underscores::kDrop;
  bool operator==(const HttpLimits&) const = default;
};

/// HTTP/2 session settings and abuse limits (both directions; the limits guard downstream
/// sessions). Defaults documented in docs/configuration.md.
struct Http2Settings {
  uint32_t maxConcurrentStreams = 100;          // SETTINGS_MAX_CONCURRENT_STREAMS we send
  uint32_t initialStreamWindow = 1024 * 1024;   // bytes a peer may send per stream unread
  uint32_t initialConnectionWindow = 16 << 20;  // ... and per connection
  uint32_t maxContinuations = 8;                // CONTINUATION frames after one HEADERS
  uint32_t maxResetBurst = 200;                 // RST_STREAM frames received: burst ...
  uint32_t maxResetsPerSecond = 33;             // ... and sustained rate
  uint32_t maxControlFrameBurst = 1000;         // PING, SETTINGS, PRIORITY, empty DATA ...
  uint32_t maxControlFramesPerSecond = 100;     // ... received: burst and sustained rate
  uint32_t maxOutboundControlFrames = 1000;     // PING/SETTINGS ACKs queued, unsent
  uint32_t maxSettingsEntries = 32;             // entries in one SETTINGS frame
  bool operator==(const Http2Settings&) const = default;
};

/// Per-endpoint upstream connection pool defaults (per worker).
struct UpstreamDefaults {
  Duration connectTimeout = std::chrono::seconds(1);
  uint32_t maxIdlePerEndpoint = 512;
  Duration idleTimeout = std::chrono::seconds(60);
  bool operator==(const UpstreamDefaults&) const = default;
};

struct LocalApp {
  Address address{"127.0.0.1", 8080};
  std::optional<std::string> readinessPath;  // /ready waits for it when set
  bool operator==(const LocalApp&) const = default;
};

struct ControlPlaneConfig {
  Address address;
  Duration initialBackoff = std::chrono::milliseconds(250);  // doubled per failed attempt ...
  Duration maxBackoff = std::chrono::seconds(30);            // ... up to this, with jitter
  /// Where the last acked snapshot is kept, so that a restart while the control plane is
  /// away still has its rules ("": not kept).
  std::string cacheFile;
  bool operator==(const ControlPlaneConfig&) const = default;
};

struct RulesSource {
  std::vector<std::string> files;  // globs
  bool watch = true;               // reload when the files change (else SIGHUP / POST /reload)
  std::optional<ControlPlaneConfig> controlPlane;
  bool operator==(const RulesSource&) const = default;
};

struct AccessLog {
  std::string path;  // "" = off; "-" = stdout
  bool operator==(const AccessLog&) const = default;
};

/// The Redis that global rate limits keep their counters in.
struct RedisConfig {
  std::optional<Address> address;
  Duration timeout = std::chrono::milliseconds(50);  // a slower answer: the local fallback
  bool operator==(const RedisConfig&) const = default;
};

/// The user Tether drops to once its listeners are bound (when started as root), so that
/// iptables can exempt its own traffic by owner (deploy/tether-iptables).
struct RunAs {
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool operator==(const RunAs&) const = default;
};

struct Bootstrap {
  Node node;
  std::optional<RunAs> runAs;
  Address admin{"127.0.0.1", 15000};
  uint32_t workers = 0;  // 0 = auto (one per core)
  std::vector<ListenerConfig> listeners;
  LocalApp localApp;
  RulesSource rules;
  Duration drainTimeout = std::chrono::seconds(20);
  Duration drainGrace = std::chrono::seconds(1);  // keep accepting after /ready turns 503
  HttpLimits http;
  Http2Settings http2;
  UpstreamDefaults upstream;
  AccessLog accessLog;
  RedisConfig redis;
};

}  // namespace tether::config
