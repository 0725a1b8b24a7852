#pragma once

// The TETHER-HMAC-SHA256 request signature (docs/security.md has the full specification
// and a worked example). Modelled on AWS SigV4: a canonical request (method, normalized
// path, sorted query, signed headers, body hash) is hashed into a string to sign, which the
// caller's key signs with HMAC-SHA256.

// The low-level SHA-256 API: a plain struct state, no allocation, no provider lookup and
// no lock per use (the EVP API costs several of each per call in OpenSSL 3, which doubled
// the CPU per request of a signing sidecar). Deprecated in 3.0, still supported.
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <openssl/sha.h>

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

#include "proxy/codec/headers.h"

namespace tether::filters::hmac {

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

/// An HMAC-SHA256 key with its inner and outer pads already hashed: each MAC then costs
/// two short hashes and two struct copies.
class HmacKey {
 public:
  explicit HmacKey(std::string_view secret);
  std::array<uint8_t, 32> mac(std::string_view data) const;
  const std::string& secret() const { return secret_; }

 private:
  std::string secret_;
  SHA256_CTX inner_;
  SHA256_CTX outer_;
};
/// 16 random bytes, hex. Drawn from OpenSSL's generator a few kilobytes at a time, per
/// thread: one nonce costs a copy, not a trip through the provider's locks.
std::string newNonce();
/// The hex SHA-256 of an empty body.
inline constexpr std::string_view kEmptyBodyHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// "YYYYMMDDTHHMMSSZ" (UTC), and back.
std::string formatDate(int64_t unixSeconds);
std::optional<int64_t> parseDate(std::string_view text);

/// SHA-256 over a body that arrives in pieces.
class Sha256 {
 public:
  Sha256() { SHA256_Init(&ctx_); }
  void update(std::string_view data) { SHA256_Update(&ctx_, data.data(), data.size()); }
  std::string finishHex();

 private:
  SHA256_CTX ctx_;
};

/// The Authorization header's fields.
struct Authorization {
  std::string keyId;
  std::vector<std::string> signedHeaders;
  std::array<uint8_t, 32> signature{};
};
/// "TETHER-HMAC-SHA256 keyId=K, signedHeaders=a;b, signature=HEX"; false when malformed.
/// `out` may be reused from one call to the next: its strings keep their storage.
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
Signature sign(const RequestView& r, std::string_view keyId, const HmacKey& key,
               const std::vector<std::string>& configuredHeaders, std::string_view payloadHash,
               int64_t unixNow, std::string nonce);
/// The Authorization value for `r`, which already carries Tether's three headers;
/// `signedHeaders` as signedHeaderNames() makes them.
std::string authorization(const RequestView& r, std::string_view keyId, const HmacKey& key,
                          const std::vector<std::string>& signedHeaders);
/// The expected signature of `r` as it arrived (Tether's headers included).
std::array<uint8_t, 32> expectedSignature(const RequestView& r, std::string_view keyId,
                                          const HmacKey& key,
                                          const std::vector<std::string>& signedHeaders);

/// Secrets by file, re-read when the file changes. Slots are made on first use and live for
/// the process; a reader gets the current secret without a lock (old values are kept for a
/// few reloads, longer than any synchronous use of one).
class SecretStore {
 public:
  class Slot {
   public:
    const HmacKey& get() const { return *current_.load(std::memory_order_acquire); }

   private:
    std::atomic<const HmacKey*> current_{nullptr};
    std::deque<std::unique_ptr<HmacKey>> versions_;
    int64_t mtime_ = 0;
    std::string path_;
    friend class SecretStore;
  };
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
/// window. Bounded: a full cache refuses new nonces (fail closed) instead of forgetting live
/// ones; full means a nonce finds no free or expired slot among the 64 after its own. Compact,
/// since it must hold every nonce of `clockSkew` seconds of traffic: a nonce is kept as a 64-bit
/// keyed fingerprint with its expiry, 12 bytes per slot, in open-addressing tables (16 shards, a
/// mutex each, held for one probe sequence). Expired slots are reused in place; nothing is swept.
/// The tables are one anonymous mapping (huge pages where the kernel allows): pages cost memory
/// once a nonce lands on them, and a lookup rarely misses the TLB.
class NonceCache {
 public:
  explicit NonceCache(size_t capacity);
  ~NonceCache();
  NonceCache(const NonceCache&) = delete;
  NonceCache& operator=(const NonceCache&) = delete;
  enum class Result { kAdded, kReplayed, kFull };
  /// Starts loading the cache line `nonce` would probe first: a verifier calls it before the
  /// signature check, so the memory read overlaps the hashing.
  void prefetch(std::string_view nonce) const;
  /// Remembers `nonce` until `expiresAt` (unix seconds).
  Result add(std::string_view nonce, int64_t expiresAt, int64_t now);
  bool contains(std::string_view nonce, int64_t now) const;
  /// Live entries (an estimate: expired slots are counted until reused).
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxProbe = 64;
  // Fingerprint and expiry side by side: one cache line per probe.
  struct [[gnu::packed]] Slot {
    uint64_t fingerprint;  // 0: never used
    uint32_t expiry;       // unix seconds
  };
  struct Shard {
    mutable std::mutex mu;
    Slot* slots = nullptr;
    size_t used = 0;  // slots holding a fingerprint, live or expired
  };
  uint64_t fingerprintOf(std::string_view nonce) const;
  size_t mask_;  // slots per shard - 1
  void* map_ = nullptr;
  size_t mapBytes_ = 0;
  uint64_t seed_;
  mutable Shard shards_[kShards];
};

}  // namespace tether::filters::hmac
