#include "filters/auth/hmac.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <vector>

#include "config/config.h"
#include "proxy/common/log.h"

namespace tether::filters::hmac {

namespace {

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

constexpr std::array<int8_t, 256> kHexValues = [] {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
  for (int c = 'A'; c <= 'F'; ++c) t[c] = static_cast<int8_t>(c - 'A' + 10);
  return t;
}();

int hexValue(char c) { return kHexValues[static_cast<unsigned char>(c)]; }

/// %XX sequences decoded; a '%' not followed by two hex digits stays a literal '%'.
std::string decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void encodeInto(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (unreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// A header value as signed: trimmed, each run of spaces and tabs made one space.
void appendValue(std::string& out, std::string_view v) {
  v = trimmed(v);
  // Runs between blanks are appended whole (usually the whole value is one).
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!v.empty()) {
    size_t run = 0;
    while (run < v.size() && !blank(v[run])) ++run;
    out.append(v.data(), run);
    if (run == v.size()) return;
    out += ' ';
    while (run < v.size() && blank(v[run])) ++run;  // trimmed: a run follows
    v.remove_prefix(run);
  }
}

}  // namespace

namespace {

/// Most paths are already canonical: '/'-separated unreserved characters, no dot segment.
bool alreadyCanonical(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  size_t segmentStart = 1;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string_view seg = path.substr(segmentStart, i - segmentStart);
      if (seg == "." || seg == "..") return false;
      segmentStart = i + 1;
      continue;
    }
    if (!unreserved(static_cast<unsigned char>(path[i]))) return false;
  }
  return true;
}

}  // namespace

std::string canonicalPath(std::string_view path) {
  path = path.substr(0, path.find('?'));
  if (alreadyCanonical(path)) return std::string(path);
  // RFC 3986 remove_dot_segments, on decoded segments: "%2E%2E" is ".." to every server.
  std::vector<std::string> out;
  bool trailingSlash = !path.empty() && path.back() == '/';
  size_t pos = path.empty() || path.front() != '/' ? 0 : 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view raw =
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    std::string segment = decode(raw);
    bool last = slash == std::string_view::npos;
    if (segment == ".") {
      trailingSlash = trailingSlash || last;
    } else if (segment == "..") {
      if (!out.empty()) out.pop_back();
      trailingSlash = trailingSlash || last;
    } else if (!(last && segment.empty())) {
      out.push_back(std::move(segment));
    }
    if (last) break;
    pos = slash + 1;
  }
  std::string result;
  for (const auto& s : out) {
    result += '/';
    encodeInto(result, s);
  }
  if (result.empty() || trailingSlash) result += '/';
  return result;
}

std::string canonicalQuery(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return "";
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    if (!piece.empty()) {
      size_t eq = piece.find('=');
      std::string name, value;
      encodeInto(name, decode(piece.substr(0, eq)));
      if (eq != std::string_view::npos) encodeInto(value, decode(piece.substr(eq + 1)));
      params.emplace_back(std::move(name), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

std::vector<std::string> signedHeaderNames(const std::vector<std::string>& configured) {
  std::vector<std::string> names = {"host", std::string(kContentHeader), std::string(kDateHeader),
                                    std::string(kNonceHeader)};
  for (const auto& h : configured) {
    std::string lower = h;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    names.push_back(std::move(lower));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

namespace {

/// The canonical request, appended to `out` (a buffer the caller reuses).
void appendCanonicalRequest(std::string& out, const RequestView& r,
                            const std::vector<std::string>& signedHeaders,
                            std::string_view payloadHash) {
  out += r.method;
  out += '\n';
  std::string_view path = r.target.substr(0, r.target.find('?'));
  if (alreadyCanonical(path)) {
    out += path;  // the common case: no copy of its own
  } else {
    out += canonicalPath(r.target);
  }
  out += '\n';
  if (r.target.find('?') != std::string_view::npos) out += canonicalQuery(r.target);
  out += '\n';
  for (const auto& name : signedHeaders) {
    out += name;
    out += ':';
    if (name == "host") {
      appendValue(out, r.host);
    } else {
      // Repeated fields are joined with ',' in the order they came.
      bool first = true;
      for (const auto& f : *r.headers) {
        if (std::string_view(f.name) != name) continue;
        if (!first) out += ',';
        appendValue(out, f.value);
        first = false;
      }
    }
    out += '\n';
  }
  out += '\n';
  for (size_t i = 0; i < signedHeaders.size(); ++i) {
    if (i) out += ';';
    out += signedHeaders[i];
  }
  out += '\n';
  out += payloadHash;
}

}  // namespace

std::string canonicalRequest(const RequestView& r, const std::vector<std::string>& signedHeaders,
                             std::string_view payloadHash) {
  std::string out;
  appendCanonicalRequest(out, r, signedHeaders, payloadHash);
  return out;
}

std::string stringToSign(std::string_view date, std::string_view keyId,
                         std::string_view canonicalRequest) {
  std::string out(kScheme);
  out += '\n';
  out += date;
  out += '\n';
  out += keyId;
  out += '\n';
  out += sha256Hex(canonicalRequest);
  return out;
}

std::string hex(const uint8_t* data, size_t len) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 15];
  }
  return out;
}

bool unhex(std::string_view text, uint8_t* out, size_t len) {
  if (text.size() != len * 2) return false;
  // No branch per digit: a non-digit is -1, whose bits reach the sign of `bad`.
  int bad = 0;
  for (size_t i = 0; i < len; ++i) {
    int hi = hexValue(text[2 * i]), lo = hexValue(text[2 * i + 1]);
    bad |= hi | lo;
    out[i] = static_cast<uint8_t>((hi & 15) << 4 | (lo & 15));
  }
  return bad >= 0;
}

std::string sha256Hex(std::string_view data) { return config::sha256Hex(data); }

HmacKey::HmacKey(std::string_view secret) : secret_(secret) {
  // RFC 2104: a key longer than the block is hashed first; then padded with zeros.
  uint8_t block[SHA256_CBLOCK] = {};
  if (secret.size() > sizeof(block)) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, secret.data(), secret.size());
    SHA256_Final(block, &c);
  } else {
    std::memcpy(block, secret.data(), secret.size());
  }
  uint8_t pad[SHA256_CBLOCK];
  for (size_t i = 0; i < sizeof(block); ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&inner_);
  SHA256_Update(&inner_, pad, sizeof(pad));
  for (size_t i = 0; i < sizeof(block); ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&outer_);
  SHA256_Update(&outer_, pad, sizeof(pad));
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(pad, sizeof(pad));
}

std::array<uint8_t, 32> HmacKey::mac(std::string_view data) const {
  std::array<uint8_t, 32> inner{}, out{};
  SHA256_CTX c = inner_;
  SHA256_Update(&c, data.data(), data.size());
  SHA256_Final(inner.data(), &c);
  c = outer_;
  SHA256_Update(&c, inner.data(), inner.size());
  SHA256_Final(out.data(), &c);
  return out;
}

std::string newNonce() {
  thread_local uint8_t pool[4096];
  thread_local size_t used = sizeof(pool);
  if (used + 16 > sizeof(pool)) {
    // A nonce that is not random can be replayed: with the generator broken, stop.
    if (RAND_bytes(pool, sizeof(pool)) != 1) proxy::fatal("hmac: the random generator failed");
    used = 0;
  }
  std::string n = hex(pool + used, 16);
  OPENSSL_cleanse(pool + used, 16);  // handed out once
  used += 16;
  return n;
}

std::string formatDate(int64_t unixSeconds) {
  // Every request of a second carries the same date: format it once per second and thread.
  thread_local int64_t cachedSecond = -1;
  thread_local std::string cached;
  if (unixSeconds == cachedSecond) return cached;
  time_t t = static_cast<time_t>(unixSeconds);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &utc);
  cachedSecond = unixSeconds;
  cached = buf;
  return cached;
}

std::optional<int64_t> parseDate(std::string_view text) {
  // Every request of a second carries the same date, and timegm() is not cheap.
  thread_local char lastText[16] = {};
  thread_local int64_t lastValue = 0;
  thread_local bool haveLast = false;
  if (haveLast && text.size() == sizeof(lastText) &&
      std::memcmp(text.data(), lastText, sizeof(lastText)) == 0) {
    return lastValue;
  }
  // Exactly YYYYMMDDTHHMMSSZ.
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return std::nullopt;
  auto num = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!num(0, 4, y) || !num(4, 2, mo) || !num(6, 2, d) || !num(9, 2, h) || !num(11, 2, mi) ||
      !num(13, 2, s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  tm utc{};
  utc.tm_year = y - 1900;
  utc.tm_mon = mo - 1;
  utc.tm_mday = d;
  utc.tm_hour = h;
  utc.tm_min = mi;
  utc.tm_sec = s;
  lastValue = static_cast<int64_t>(timegm(&utc));
  std::memcpy(lastText, text.data(), sizeof(lastText));
  haveLast = true;
  return lastValue;
}

std::string Sha256::finishHex() {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &ctx_);
  return hex(digest, sizeof(digest));
}

bool parseAuthorization(std::string_view value, Authorization& out) {
  value = trimmed(value);
  if (value.substr(0, kScheme.size()) != kScheme || value.size() == kScheme.size() ||
      value[kScheme.size()] != ' ') {
    return false;
  }
  value.remove_prefix(kScheme.size() + 1);
  bool haveKey = false, haveHeaders = false, haveSignature = false;
  size_t names = 0;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view field = trimmed(value.substr(0, comma));
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = field.substr(0, eq), v = field.substr(eq + 1);
    if (name == "keyId" && !haveKey && !v.empty()) {
      out.keyId = v;
      haveKey = true;
    } else if (name == "signedHeaders" && !haveHeaders && !v.empty()) {
      while (!v.empty()) {
        size_t semi = v.find(';');
        std::string_view h = v.substr(0, semi);
        if (h.empty()) return false;
        if (names < out.signedHeaders.size()) {
          out.signedHeaders[names].assign(h);
        } else {
          out.signedHeaders.emplace_back(h);
        }
        ++names;
        if (semi == std::string_view::npos) break;
        v.remove_prefix(semi + 1);
      }
      haveHeaders = true;
    } else if (name == "signature" && !haveSignature) {
      if (!unhex(v, out.signature.data(), out.signature.size())) return false;
      haveSignature = true;
    } else {
      return false;
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  out.signedHeaders.resize(names);
  if (!haveKey || !haveHeaders || !haveSignature) return false;
  // Signed header names are lower case, sorted and unique: one canonical spelling.
  for (size_t i = 0; i < out.signedHeaders.size(); ++i) {
    const std::string& h = out.signedHeaders[i];
    for (char c : h) {
      if (std::isupper(static_cast<unsigned char>(c)) || c == ' ') return false;
    }
    if (i > 0 && out.signedHeaders[i - 1] >= h) return false;
  }
  return true;
}

Signature sign(const RequestView& r, std::string_view keyId, const HmacKey& key,
               const std::vector<std::string>& configuredHeaders, std::string_view payloadHash,
               int64_t unixNow, std::string nonce) {
  Signature s;
  s.date = formatDate(unixNow);
  s.nonce = std::move(nonce);
  s.contentSha256 = payloadHash;
  // The request as the verifier will see it: with Tether's three headers set.
  proxy::HeaderMap headers;
  for (const auto& f : *r.headers) {
    if (f.name == kDateHeader || f.name == kNonceHeader || f.name == kContentHeader ||
        f.name == "authorization") {
      continue;
    }
    headers.add(f.name, f.value);
  }
  headers.add(kContentHeader, s.contentSha256);
  headers.add(kDateHeader, s.date);
  headers.add(kNonceHeader, s.nonce);
  RequestView view = r;
  view.headers = &headers;
  s.authorization = authorization(view, keyId, key, signedHeaderNames(configuredHeaders));
  return s;
}

std::string authorization(const RequestView& r, std::string_view keyId, const HmacKey& key,
                          const std::vector<std::string>& signedHeaders) {
  std::array<uint8_t, 32> mac = expectedSignature(r, keyId, key, signedHeaders);
  std::string out;
  out.reserve(160);
  out += kScheme;
  out += " keyId=";
  out += keyId;
  out += ", signedHeaders=";
  for (size_t i = 0; i < signedHeaders.size(); ++i) {
    if (i) out += ';';
    out += signedHeaders[i];
  }
  out += ", signature=";
  out += hex(mac.data(), mac.size());
  return out;
}

std::array<uint8_t, 32> expectedSignature(const RequestView& r, std::string_view keyId,
                                          const HmacKey& key,
                                          const std::vector<std::string>& signedHeaders) {
  const proxy::HeaderString* payload = r.headers->get(kContentHeader);
  const proxy::HeaderString* date = r.headers->get(kDateHeader);
  // One buffer per thread for the canonical request, then the string to sign.
  thread_local std::string canonical;
  canonical.clear();
  appendCanonicalRequest(canonical, r, signedHeaders,
                         payload ? std::string_view(*payload) : std::string_view());
  // The string to sign, hashed as it is written: no second buffer.
  // SHA256() itself goes through EVP (a provider fetch per call): the struct API does not.
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, canonical.data(), canonical.size());
  SHA256_Final(digest, &c);
  char hexDigest[2 * SHA256_DIGEST_LENGTH];
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof(digest); ++i) {
    hexDigest[2 * i] = kHex[digest[i] >> 4];
    hexDigest[2 * i + 1] = kHex[digest[i] & 15];
  }
  canonical.clear();  // reused for the string to sign
  canonical += kScheme;
  canonical += '\n';
  if (date) canonical += *date;
  canonical += '\n';
  canonical += keyId;
  canonical += '\n';
  canonical.append(hexDigest, sizeof(hexDigest));
  return key.mac(canonical);
}

}  // namespace tether::filters::hmac
