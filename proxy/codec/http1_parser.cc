#include "proxy/codec/http1_parser.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tether::proxy {

namespace {

Http1Parser* self(llhttp_t* p) { return static_cast<Http1Parser*>(p->data); }

int cbMessageBegin(llhttp_t* p) { return self(p)->onMessageBegin(); }
int cbUrl(llhttp_t* p, const char* at, size_t len) { return self(p)->onUrl(at, len); }
int cbStatus(llhttp_t* p, const char* at, size_t len) { return self(p)->onStatus(at, len); }
int cbHeaderField(llhttp_t* p, const char* at, size_t len) {
  return self(p)->onHeaderField(at, len);
}
int cbHeaderValue(llhttp_t* p, const char* at, size_t len) {
  return self(p)->onHeaderValue(at, len);
}
int cbHeadersComplete(llhttp_t* p) { return self(p)->onHeadersCompleteRaw(); }
int cbBody(llhttp_t* p, const char* at, size_t len) { return self(p)->onBodyRaw(at, len); }
int cbMessageComplete(llhttp_t* p) { return self(p)->onMessageCompleteRaw(); }

// Field values: VCHAR, SP, HTAB and obs-text. Everything else (CR, LF, NUL, other controls,
// DEL) is refused rather than passed on for a next hop to misread.
bool validValueByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// Eight bytes at a time: a word with no byte below 0x20 and none equal to 0x7f is valid
// as it is (bit tricks from "Bit Twiddling Hacks": hasless, haszero); only a word holding a
// control byte (a tab, usually) is looked at byte by byte.
bool validValue(std::string_view v) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  const char* p = v.data();
  size_t n = v.size(), i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    std::memcpy(&x, p + i, 8);
    uint64_t below20 = (x - kOnes * 0x20) & ~x & kHighs;
    uint64_t del = x ^ (kOnes * 0x7f);
    uint64_t is7f = (del - kOnes) & ~del & kHighs;
    if ((below20 | is7f) == 0) continue;
    for (size_t j = i; j < i + 8; ++j) {
      if (!validValueByte(static_cast<unsigned char>(p[j]))) return false;
    }
  }
  for (; i < n; ++i) {
    if (!validValueByte(static_cast<unsigned char>(p[i]))) return false;
  }
  return true;
}

void trimOws(HeaderString& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  if (e != s.size()) s.erase(e);
  if (b != 0) s.erase(0, b);
}

// RFC 9110 tchar, mapped to its lower case; 0 for every other byte.
constexpr std::array<char, 256> kTokenLower = [] {
  std::array<char, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<char>(c);
  for (int c = 'a'; c <= 'z'; ++c) t[c] = static_cast<char>(c);
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = static_cast<char>(c - 'A' + 'a');
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = c;
  return t;
}();

/// Lower-cases a header name in place; false if it holds a byte that is not a tchar.
bool lowerToken(HeaderString& name) {
  for (char& c : name) {
    c = kTokenLower[static_cast<unsigned char>(c)];
    if (c == 0) return false;
  }
  return true;
}

}  // namespace

Http1Parser::Http1Parser(Type type, Callbacks& callbacks, Http1Limits limits)
    : type_(type), callbacks_(callbacks), limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = cbMessageBegin;
  settings_.on_url = cbUrl;
  settings_.on_status = cbStatus;
  settings_.on_header_field = cbHeaderField;
  settings_.on_header_value = cbHeaderValue;
  settings_.on_headers_complete = cbHeadersComplete;
  settings_.on_body = cbBody;
  settings_.on_message_complete = cbMessageComplete;
  llhttp_init(&parser_, type == Type::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

void Http1Parser::fail(Reason reason, std::string message) {
  if (errorReason_ != Reason::kNone) return;  // keep the first cause
  errorReason_ = reason;
  errorMessage_ = std::move(message);
}

const char* Http1Parser::scanHead(const char* data, size_t len, size_t& headEnd) {
  // llhttp takes "\r" followed by anything as the blank line that ends a head, so a request
  // with "\rTransfer-Encoding: chunked" would end early and its tail would be parsed as
  // the next request. Every CR and LF of a head must come as a CRLF pair; checking that
  // here, before llhttp sees the bytes, keeps such a request from being forwarded at all.
  // Line by line with memchr (vectorized in libc): the bytes between the line ends are
  // never looked at one by one.
  constexpr const char* kBareLine = "bare CR or LF in the message head";
  headEnd = len;
  size_t i = 0;
  if (pendingCr_ && len > 0) {  // the last piece ended in CR
    pendingCr_ = false;
    if (data[0] != '\n') return kBareLine;
    i = 1;
    if (lineEmpty_) {
      headEnd = 1;
      return nullptr;
    }
    lineEmpty_ = true;
  }
  while (i < len) {
    // A line that starts with whitespace continues the one before (obs-fold, RFC 9112
    // §5.2) or sits between the start line and the fields (§2.2): refused either way,
    // even after an empty value, where llhttp reports no second value piece to catch it.
    if (lineEmpty_ && (data[i] == ' ' || data[i] == '\t')) return "obsolete line folding";
    const auto* lf = static_cast<const char*>(std::memchr(data + i, '\n', len - i));
    size_t end = lf ? static_cast<size_t>(lf - data) : len;  // this line's bytes: [i, end)
    const auto* cr = static_cast<const char*>(std::memchr(data + i, '\r', end - i));
    if (!lf) {
      // The line goes on in the next piece; a CR may only be this piece's last byte.
      if (cr && cr != data + len - 1) return kBareLine;
      if (len - i > (cr ? 1u : 0u)) lineEmpty_ = false;
      pendingCr_ = cr != nullptr;
      return nullptr;
    }
    // The LF must follow a CR, the line's only one.
    if (end == i || cr != data + end - 1) return kBareLine;
    if (end - 1 > i) lineEmpty_ = false;
    if (lineEmpty_) {
      headEnd = end + 1;
      return nullptr;
    }
    lineEmpty_ = true;
    i = end + 1;
  }
  return nullptr;
}

Http1Parser::Result Http1Parser::execute(const char* data, size_t len) {
  Result r;
  size_t offset = 0;
  for (;;) {
    const char* chunk = data + offset;
    size_t chunkLen = len - offset;
    size_t feed = chunkLen;
    if (scanningHead_) {
      size_t headEnd;
      if (const char* why = scanHead(chunk, chunkLen, headEnd)) {
        fail(Reason::kBadRequest, why);
        r.status = Status::kError;
        return r;
      }
      // The head alone first: whether a chunked body follows is known once it is parsed,
      // and that body must be checked before llhttp reads it.
      feed = headEnd;
    } else if (chunk_ != Chunk::kOff) {
      // llhttp reads only the bytes it is given; they are the caller's read buffer, which
      // the extension rewrite may change.
      if (const char* why = scanChunks(const_cast<char*>(chunk), chunkLen)) {
        fail(Reason::kBadRequest, why);
        r.status = Status::kError;
        return r;
      }
    }
    bufStart_ = chunk;
    bufEnd_ = chunk + feed;
    llhttp_errno_t err = llhttp_execute(&parser_, chunk, feed);
    switch (err) {
      case HPE_OK:
        offset += feed;
        r.consumed = offset;
        if (offset == len) return r;
        continue;
      case HPE_PAUSED:
        r.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        if (autoResume_) {
          // Paused by us at a message end so that the next head gets scanned too.
          autoResume_ = false;
          llhttp_resume(&parser_);
          offset = r.consumed;
          if (offset == len) return r;
          continue;
        }
        r.status = Status::kPaused;
        return r;
      case HPE_PAUSED_UPGRADE:
        r.status = Status::kUpgrade;
        r.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        return r;
      default:
        r.status = Status::kError;
        if (errorReason_ == Reason::kNone) {
          const char* why = llhttp_get_error_reason(&parser_);
          fail(Reason::kBadRequest, why ? why : llhttp_errno_name(err));
        }
        return r;
    }
  }
}

void Http1Parser::resume() { llhttp_resume(&parser_); }

Http1Parser::Status Http1Parser::finish() {
  llhttp_errno_t err = llhttp_finish(&parser_);
  if (err == HPE_OK || err == HPE_PAUSED) return Status::kOk;
  fail(Reason::kBadRequest, "connection closed inside a message");
  return Status::kError;
}

bool Http1Parser::countBytes(size_t len) {
  headerBytes_ += len;
  if (headerBytes_ > limits_.maxHeadersBytes) {
    fail(Reason::kHeadersTooLarge,
         "header section larger than " + std::to_string(limits_.maxHeadersBytes) + " bytes");
    return false;
  }
  return true;
}

const char* Http1Parser::scanExtensionByte(unsigned char c) {
  constexpr const char* kInvalid = "invalid chunk extension";
  bool ws = c == ' ' || c == '\t';
  bool tchar = kTokenLower[c] != 0;
  switch (chunk_) {
    case Chunk::kExtSemi:
      if (ws) return nullptr;
      if (c == ';')
        chunk_ = Chunk::kExtNameStart;
      else if (c == '\r' && chunkExtSeen_)
        chunk_ = Chunk::kSizeLf;
      else
        return kInvalid;
      return nullptr;
    case Chunk::kExtNameStart:
      if (ws) return nullptr;
      if (!tchar) return kInvalid;
      chunk_ = Chunk::kExtName;
      chunkExtSeen_ = true;
      return nullptr;
    case Chunk::kExtName:
    case Chunk::kExtAfterName:
    case Chunk::kExtToken: {
      // After a name or a value: more of it, then BWS, "=" (a name's value), ";" or CR.
      bool value = chunk_ == Chunk::kExtToken;
      if (tchar && chunk_ != Chunk::kExtAfterName) return nullptr;
      if (c == '=' && !value) {
        chunk_ = Chunk::kExtValueStart;
      } else if (ws) {
        chunk_ = value ? Chunk::kExtSemi : Chunk::kExtAfterName;
      } else if (c == ';') {
        chunk_ = Chunk::kExtNameStart;
      } else if (c == '\r') {
        chunk_ = Chunk::kSizeLf;
      } else {
        return kInvalid;
      }
      return nullptr;
    }
    case Chunk::kExtValueStart:
      if (ws) return nullptr;
      if (c != '"' && !tchar) return kInvalid;
      chunk_ = c == '"' ? Chunk::kExtQuoted : Chunk::kExtToken;
      return nullptr;
    case Chunk::kExtQuoted:
    case Chunk::kExtEscape:
      if ((c < 0x20 && c != '\t') || c == 0x7f) return kInvalid;
      if (chunk_ == Chunk::kExtEscape)
        chunk_ = Chunk::kExtQuoted;
      else if (c == '"')
        chunk_ = Chunk::kExtSemi;
      else if (c == '\\')
        chunk_ = Chunk::kExtEscape;
      return nullptr;
    default:
      return kInvalid;
  }
}

const char* Http1Parser::scanChunks(char* data, size_t len) {
  constexpr size_t kMaxExtensionBytes = 4096;
  for (size_t i = 0; i < len && chunk_ != Chunk::kOff; ++i) {
    auto c = static_cast<unsigned char>(data[i]);
    switch (chunk_) {
      case Chunk::kOff:
        break;
      case Chunk::kSize:
        if (std::isxdigit(c)) {
          if (++chunkDigits_ > 15) return "chunk size too large";
          chunkLeft_ =
              chunkLeft_ * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        } else if (chunkDigits_ > 0 && (c == ';' || c == ' ' || c == '\t')) {
          // The extensions are checked here against the RFC 9110 grammar, then written as
          // one long name for llhttp (which refuses some valid lists): ";xxxx".
          chunk_ = c == ';' ? Chunk::kExtNameStart : Chunk::kExtSemi;
          chunkExtSeen_ = false;
          data[i] = ';';
        } else if (chunkDigits_ > 0 && c == '\r') {
          chunk_ = Chunk::kSizeLf;
        } else {
          return "invalid chunk size line";
        }
        break;
      case Chunk::kExtSemi:
      case Chunk::kExtNameStart:
      case Chunk::kExtName:
      case Chunk::kExtAfterName:
      case Chunk::kExtValueStart:
      case Chunk::kExtToken:
      case Chunk::kExtQuoted:
      case Chunk::kExtEscape:
        if (const char* why = scanExtensionByte(c)) return why;
        if (chunk_ == Chunk::kSizeLf) break;  // the CR stays
        if (++chunkExtBytes_ > kMaxExtensionBytes) return "chunk extension too long";
        data[i] = 'x';
        break;
      case Chunk::kSizeLf:
        if (c != '\n') return "chunk size line not ended by CRLF";
        chunk_ = chunkLeft_ == 0 ? Chunk::kTrailerStart : Chunk::kData;
        break;
      case Chunk::kData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(chunkLeft_, len - i));
        chunkLeft_ -= n;
        i += n - 1;
        if (chunkLeft_ == 0) chunk_ = Chunk::kDataCr;
        break;
      }
      case Chunk::kDataCr:
        if (c != '\r') return "chunk data not followed by CRLF";
        chunk_ = Chunk::kDataLf;
        break;
      case Chunk::kDataLf:
        if (c != '\n') return "chunk data not followed by CRLF";
        chunk_ = Chunk::kSize;
        chunkDigits_ = 0;
        chunkExtBytes_ = 0;
        break;
      case Chunk::kTrailerStart:
        if (c == '\r') {
          chunk_ = Chunk::kEndLf;
        } else if (c == '\n') {
          return "bare LF in the trailers";
        } else {
          chunk_ = Chunk::kTrailer;
        }
        break;
      case Chunk::kTrailer:
        if (c == '\r') chunk_ = Chunk::kTrailerLf;
        if (c == '\n') return "bare LF in the trailers";
        break;
      case Chunk::kTrailerLf:
        if (c != '\n') return "bare CR in the trailers";
        chunk_ = Chunk::kTrailerStart;
        break;
      case Chunk::kEndLf:
        if (c != '\n') return "chunked body not ended by CRLF";
        chunk_ = Chunk::kOff;  // the rest belongs to the next message
        break;
    }
  }
  return nullptr;
}

int Http1Parser::onMessageBegin() {
  chunk_ = Chunk::kOff;
  message_ = Http1Message{};
  message_.headers.fields().reserve(16);  // one allocation for a typical head
  trailers_.clear();
  inField_ = false;
  inValue_ = false;
  headersDone_ = false;
  inMessage_ = true;
  headerBytes_ = 0;
  return 0;
}

int Http1Parser::onUrl(const char* at, size_t len) {
  if (!countBytes(len)) return -1;
  message_.url.append(at, len);
  return 0;
}

int Http1Parser::onStatus(const char* at, size_t len) {
  if (!countBytes(len)) return -1;
  return 0;
}

int Http1Parser::commitField() {
  // The field was built in place (the last one of its map); it is checked here, once whole.
  HeaderMap::Field& f = fieldTarget().fields().back();
  inField_ = false;
  inValue_ = false;
  if (f.name.empty() || !lowerToken(f.name)) {
    fail(Reason::kBadRequest, "invalid character in header name");
    return -1;
  }
  if (!validValue(f.value)) {
    fail(Reason::kBadRequest,
         "invalid character in value of header \"" + std::string(f.name) + "\"");
    return -1;
  }
  trimOws(f.value);
  if (headersDone_ && (std::string_view(f.name) == "content-length" ||
                       std::string_view(f.name) == "transfer-encoding")) {
    // RFC 9110 §6.5.1: framing is decided by the head; such a trailer is an attempt to
    // make some next hop reframe (llhttp refuses Transfer-Encoding there already).
    fail(Reason::kBadRequest, "framing field \"" + std::string(f.name) + "\" in the trailers");
    return -1;
  }
  return 0;
}

HeaderMap::Field* Http1Parser::beginField() {
  if (inField_ && commitField() != 0) return nullptr;
  HeaderMap& target = fieldTarget();
  if (target.size() >= limits_.maxHeaders) {
    fail(Reason::kHeadersTooLarge,
         "more than " + std::to_string(limits_.maxHeaders) + " header fields");
    return nullptr;
  }
  inField_ = true;
  return &target.addEmpty();
}

int Http1Parser::onHeaderField(const char* at, size_t len) {
  if (!countBytes(len)) return -1;
  HeaderMap::Field* f = !inField_ || inValue_ ? beginField() : &fieldTarget().fields().back();
  if (!f) return -1;
  f->name.append(at, len);
  return 0;
}

int Http1Parser::onHeaderValue(const char* at, size_t len) {
  if (!countBytes(len)) return -1;
  // A value with no name before it (": x") gets an empty one, which commitField() refuses.
  HeaderMap::Field* f = inField_ ? &fieldTarget().fields().back() : beginField();
  if (!f) return -1;
  // llhttp folds obs-fold continuation lines into the same value, calling us once per line.
  // A second call is legitimate only when the value was split across two reads: the first
  // part then ended at the end of the previous buffer and this one starts this buffer.
  if (inValue_ && !(at == bufStart_ && valueEndedAtBufferEnd_)) {
    fail(Reason::kBadRequest, "obsolete line folding in header \"" + std::string(f->name) + "\"");
    return -1;
  }
  valueEndedAtBufferEnd_ = at + len == bufEnd_;
  inValue_ = true;
  f->value.append(at, len);
  return 0;
}

int Http1Parser::validateRequestHead() {
  // llhttp accepts a few bytes in the request target that an origin may split on; only
  // visible ASCII is passed on (RFC 9112 §3.2 has no room for anything else).
  if (message_.url.empty()) {
    fail(Reason::kBadRequest, "empty request target");
    return -1;
  }
  for (unsigned char c : message_.url) {
    if (c <= 0x20 || c >= 0x7f) {
      fail(Reason::kBadRequest, "invalid character in request target");
      return -1;
    }
  }
  if (message_.versionMajor != 1) {
    fail(Reason::kBadRequest, "unsupported HTTP version");
    return -1;
  }
  return 0;
}

int Http1Parser::validateFraming() {
  // RFC 9112 §6.3: exactly one way to find the end of the body, or the request is refused.
  int clCount = 0, teCount = 0;
  for (auto& f : message_.headers.fields()) {
    std::string_view name = f.name;  // compared by length first, not by memcmp per field
    if (name == "content-length") {
      ++clCount;
      std::string_view v = f.value;
      if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != v.npos) {
        fail(Reason::kBadRequest, "invalid Content-Length");
        return -1;
      }
      std::from_chars(v.data(), v.data() + v.size(), message_.contentLength);
      if (v.size() > 1 && v[0] == '0') {
        // Forwarded in canonical form ("010" as "10"): a next hop that reads leading zeros
        // as octal, or not at all, must not see a length Tether did not frame by.
        char digits[24];
        auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), message_.contentLength);
        f.value.assign(digits, end);
      }
    } else if (name == "transfer-encoding") {
      ++teCount;
      if (!equalsIgnoreCase(f.value, "chunked")) {
        fail(Reason::kBadRequest, "unsupported Transfer-Encoding \"" + std::string(f.value) + "\"");
        return -1;
      }
    }
  }
  if (clCount > 1) {
    fail(Reason::kBadRequest, "multiple Content-Length headers");
    return -1;
  }
  if (teCount > 1) {
    fail(Reason::kBadRequest, "multiple Transfer-Encoding headers");
    return -1;
  }
  if (clCount && teCount) {
    fail(Reason::kBadRequest, "both Content-Length and Transfer-Encoding");
    return -1;
  }
  if (teCount && message_.versionMinor == 0) {
    fail(Reason::kBadRequest, "Transfer-Encoding in an HTTP/1.0 message");
    return -1;
  }
  message_.chunked = teCount == 1;
  return 0;
}

int Http1Parser::onHeadersCompleteRaw() {
  if (inField_ && commitField() != 0) return -1;
  message_.versionMajor = parser_.http_major;
  message_.versionMinor = parser_.http_minor;
  message_.keepAlive = llhttp_should_keep_alive(&parser_) != 0;
  message_.upgrade = parser_.upgrade != 0;
  if (type_ == Type::kRequest) {
    message_.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
    if (validateRequestHead() != 0) return -1;
    if (message_.upgrade && parser_.method != HTTP_CONNECT) dropH2cUpgrade();
  } else {
    message_.status = parser_.status_code;
  }
  if (validateFraming() != 0) return -1;
  if (type_ == Type::kRequest && message_.upgrade &&
      (message_.chunked || message_.contentLength > 0)) {
    // The upstream gets the head of an upgrade without body framing (the connection turns
    // into a tunnel after 101), so a body would reach it as bytes it parses as the next
    // request: smuggled past every filter. CONNECT has no content either (RFC 9110 §9.3.6).
    fail(Reason::kBadRequest, "Upgrade or CONNECT request with a body");
    return -1;
  }
  headersDone_ = true;
  scanningHead_ = false;
  if (type_ == Type::kRequest && message_.chunked) {  // (an upgrade has no body)
    chunk_ = Chunk::kSize;
    chunkLeft_ = 0;
    chunkDigits_ = 0;
    chunkExtBytes_ = 0;
  }
  int rc = callbacks_.onHeadersComplete(message_);
  if (rc < 0) return -1;
  return rc;
}

void Http1Parser::dropH2cUpgrade() {
  // "Upgrade: h2c" (RFC 7540 §3.2, gone from RFC 9113) asks the next hop to switch this
  // connection to HTTP/2; tunnelled upstream it would hand the upstream's HTTP/2 to a client
  // Tether is speaking HTTP/1.1 to. As Envoy does, the offer is dropped and the request
  // served as a plain HTTP/1.1 request (body and keep-alive included).
  const HeaderString* up = message_.headers.get("upgrade");
  if (!up || !equalsIgnoreCase(*up, "h2c")) return;
  message_.headers.remove("upgrade");
  message_.headers.remove("http2-settings");
  message_.upgrade = false;
  parser_.upgrade = 0;  // llhttp reads it after this callback: the body is parsed as a body
}

int Http1Parser::onBodyRaw(const char* at, size_t len) { return callbacks_.onBody(at, len); }

int Http1Parser::onMessageCompleteRaw() {
  if (inField_ && commitField() != 0) return -1;
  inMessage_ = false;
  scanningHead_ = true;
  lineEmpty_ = false;
  pendingCr_ = false;
  int rc = callbacks_.onMessageComplete(trailers_);
  // An upgrade ends in HPE_PAUSED_UPGRADE, which llhttp reports only if we return 0.
  if (rc == 0 && !message_.upgrade) {
    autoResume_ = true;
    return HPE_PAUSED;
  }
  return rc;
}

}  // namespace tether::proxy
