#pragma once

// The TETHER-HMAC-SHA256 request signature (docs/security.md has the full specification
// and a worked example). Modelled on AWS SigV4: a canonical request (method, normalized
// path, sorted query, signed headers, body hash) is hashed into a string to sign, which the
// caller's key signs with HMAC-SHA256.

#include <openssl/evp.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/headers.h"

namespace tether::proxy::hmac {

inline constexpr std::string_view kScheme = "TETHER-HMAC-SHA256";
inline constexpr std::string_view kDateHeader = "x-tether-date";
inline constexpr std::string_view kNonceHeader = "x-tether-nonce";
inline constexpr std::string_view kContentHeader = "x-tether-content-sha256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
/// The authenticated caller, as Tether hands it to the local app.
inline constexpr std::string_view kCallerHeader = "x-tether-caller";

/// What of a request the signature covers.
struct RequestView {
  std::string_view method;
  std::string_view target;  // path and query, as sent
  std::string_view host;    // the authority (Host header or :authority)
  const proxy::HeaderMap* headers = nullptr;
};

/// The path as signed: dot segments removed, each segment percent-decoded and re-encoded
/// (unreserved characters as is, every other byte as %XX in upper case); "/" when empty.
std::string canonicalPath(std::string_view path);
/// The query as signed: parameters percent-decoded and re-encoded like the path ('+' is a
/// literal plus), sorted by name then value, joined with '&' ("" when there is none).
std::string canonicalQuery(std::string_view query);
/// The signed header names: `configured` plus host and Tether's three, lower case, sorted,
/// without duplicates.
std::vector<std::string> signedHeaderNames(const std::vector<std::string>& configured);
/// The canonical request: six lines (method, path, query, headers block, signed header
/// names, payload hash).
std::string canonicalRequest(const RequestView& r, const std::vector<std::string>& signedHeaders,
                             std::string_view payloadHash);
std::string stringToSign(std::string_view date, std::string_view keyId,
                         std::string_view canonicalRequest);

std::string hex(const uint8_t* data, size_t len);
/// Decodes exactly `len` bytes of lower- or upper-case hex; false otherwise.
bool unhex(std::string_view text, uint8_t* out, size_t len);
std::string sha256Hex(std::string_view data);
std::array<uint8_t, 32> hmacSha256(std::string_view key, std::string_view data);
/// 16 random bytes, hex.
std::string newNonce();

/// "YYYYMMDDTHHMMSSZ" (UTC), and back.
std::string formatDate(int64_t unixSeconds);
std::optional<int64_t> parseDate(std::string_view text);

/// SHA-256 over a body that arrives in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string finishHex();

 private:
  EVP_MD_CTX* ctx_;
};

/// The Authorization header's fields.
struct Authorization {
  std::string keyId;
  std::vector<std::string> signedHeaders;
  std::array<uint8_t, 32> signature{};
};
/// "TETHER-HMAC-SHA256 keyId=K, signedHeaders=a;b, signature=HEX"; false when malformed.
bool parseAuthorization(std::string_view value, Authorization& out);

/// The headers that sign a request.
struct Signature {
  std::string authorization;
  std::string date;
  std::string nonce;
  std::string contentSha256;
};
/// Signs `r` whose body hashes to `payloadHash` (hex, or UNSIGNED-PAYLOAD). `r.headers` need
/// not hold Tether's headers yet: the values given here are the ones signed.
Signature sign(const RequestView& r, std::string_view keyId, std::string_view secret,
               const std::vector<std::string>& configuredHeaders, std::string_view payloadHash,
               int64_t unixNow, std::string nonce);
/// The expected signature of `r` as it arrived (Tether's headers included).
std::array<uint8_t, 32> expectedSignature(const RequestView& r, std::string_view keyId,
                                          std::string_view secret,
                                          const std::vector<std::string>& signedHeaders);

/// Secrets by file, re-read when the file changes. Slots are made on first use and live for
/// the process; a reader gets the current secret without a lock (old values are kept for a
/// few reloads, longer than any synchronous use of one).
class SecretStore {
 public:
  class Slot {
   public:
    std::string_view get() const { return current_.load(std::memory_order_acquire)->value; }

   private:
    struct Secret {
      std::string value;
    };
    std::atomic<const Secret*> current_{nullptr};
    std::deque<std::unique_ptr<Secret>> versions_;
    int64_t mtime_ = 0;
    std::string path_;
    friend class SecretStore;
  };
  static SecretStore& instance();
  /// The slot for `path`, reading it the first time; nullptr (and `error`) when the file
  /// cannot be read or is empty. A trailing newline is not part of the secret.
  const Slot* load(const std::string& path, std::string& error);
  /// Re-reads the files whose modification time moved; returns how many changed.
  int reloadChanged();

 private:
  static bool read(const std::string& path, std::string& value, int64_t& mtime, std::string& error);
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Slot>> slots_;
};

/// Nonces of verified requests, remembered until their timestamp leaves the accepted
/// window. Bounded: a full cache refuses new nonces (fail closed) instead of forgetting
/// live ones. 16 shards, a mutex each, held for one lookup.
class NonceCache {
 public:
  explicit NonceCache(size_t capacity);
  enum class Result { kAdded, kReplayed, kFull };
  /// Remembers `nonce` until `expiresAt` (unix seconds).
  Result add(std::string_view nonce, int64_t expiresAt, int64_t now);
  bool contains(std::string_view nonce) const;
  size_t size() const;

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, int64_t> expiry;
    std::deque<std::pair<int64_t, std::string>> order;  // roughly by expiry
  };
  static constexpr size_t kShards = 16;
  Shard& shardOf(std::string_view nonce) const;
  size_t perShard_;
  mutable Shard shards_[kShards];
};

}  // namespace tether::proxy::hmac
