#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/codec/headers.h"
#include "proxy/common/reason.h"

namespace tether::proxy {

/// One parsed HTTP/1.x message head, before it becomes a RequestHead/ResponseHead.
struct Http1Message {
  std::string method;
  std::string url;
  int status = 0;
  int versionMajor = 1;
  int versionMinor = 1;
  HeaderMap headers;           // every field, names lower-case
  int64_t contentLength = -1;  // -1: none
  bool chunked = false;
  bool keepAlive = true;
  bool upgrade = false;  // llhttp saw Upgrade/CONNECT
};

struct Http1Limits {
  uint32_t maxHeadersBytes = 60 * 1024;
  uint32_t maxHeaders = 100;
};

/// Wraps llhttp with the accumulation of split fields and Tether's own strictness on top:
/// the request-smuggling shapes of the desync corpus (duplicate or malformed
/// Content-Length, Transfer-Encoding other than a single "chunked", both together,
/// control characters, non-token names, obs-fold) are errors, not guesses.
class Http1Parser {
 public:
  enum class Type { kRequest, kResponse };

  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    /// The head is complete and valid. Return 0 to continue, 1 to skip the body (responses
    /// to HEAD, 204, 304), or -1 to fail with the error already recorded via fail().
    virtual int onHeadersComplete(Http1Message& message) = 0;
    /// A piece of the body (dechunked). Return 0 or -1.
    virtual int onBody(const char* data, size_t len) = 0;
    /// The message ended; `trailers` holds chunked trailers (maybe empty). Return 0, -1, or
    /// HPE_PAUSED to stop parsing right after this message (pipelining).
    virtual int onMessageComplete(HeaderMap& trailers) = 0;
  };

  enum class Status { kOk, kPaused, kUpgrade, kError };
  struct Result {
    Status status = Status::kOk;
    size_t consumed = 0;  // bytes of the input parsed (for kPaused/kUpgrade)
  };

  Http1Parser(Type type, Callbacks& callbacks, Http1Limits limits = {});
  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  /// Parses `data`. In a chunked request body, chunk extensions are overwritten in place
  /// (see scanChunks): `data` must point to writable memory (every caller's read buffer is).
  Result execute(const char* data, size_t len);
  /// Resumes after kPaused.
  void resume();
  /// The peer closed: ends a close-delimited body. Returns kError when a message was cut.
  Status finish();
  /// Whether the parser is between messages (nothing of a next message seen).
  bool idle() const { return !inMessage_; }
  /// Set by the parser or a callback: what went wrong, for the 400/431 reply and the log.
  Reason errorReason() const { return errorReason_; }
  const std::string& errorMessage() const { return errorMessage_; }
  void fail(Reason reason, std::string message);
  /// True once the message being parsed has ended its head (body or trailers follow).
  bool headersDone() const { return headersDone_; }

  // llhttp callback bridges.
  int onMessageBegin();
  int onUrl(const char* at, size_t len);
  int onStatus(const char* at, size_t len);
  int onHeaderField(const char* at, size_t len);
  int onHeaderValue(const char* at, size_t len);
  int onHeadersCompleteRaw();
  int onBodyRaw(const char* at, size_t len);
  int onMessageCompleteRaw();

 private:
  /// Where fields go: the head's map, or the trailers' once the head is done.
  HeaderMap& fieldTarget() { return headersDone_ ? trailers_ : message_.headers; }
  /// Checks the field being built, then appends an empty one to fill (nullptr on error).
  HeaderMap::Field* beginField();
  int commitField();
  int validateRequestHead();
  void dropH2cUpgrade();
  int validateFraming();
  bool countBytes(size_t len);
  /// Checks a head's line ends (CRLF only) and line starts (no obs-fold) before llhttp
  /// sees it; `headEnd` is where the head ends in `data` (or len). Returns an error
  /// message, or nullptr.
  const char* scanHead(const char* data, size_t len, size_t& headEnd);
  /// Checks the framing of a chunked request body in `data` before llhttp sees it, up to
  /// the body's end (RFC 9112 §7.1: every line ends in exactly CRLF, chunk data is followed
  /// by CRLF; llhttp 8 takes a CR followed by anything). Extensions are checked and then
  /// overwritten in place with a name llhttp accepts (they are not forwarded). Returns an
  /// error message, or nullptr.
  const char* scanChunks(char* data, size_t len);
  /// One byte of a chunk line's extensions, against the RFC 9110 §7.1.1 grammar: moves
  /// chunk_ on (to kSizeLf at the line's CR). Returns an error message, or nullptr.
  const char* scanExtensionByte(unsigned char c);

  Type type_;
  Callbacks& callbacks_;
  Http1Limits limits_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  Http1Message message_;
  HeaderMap trailers_;
  bool inField_ = false;  // a field is being built: the last of its map, not yet checked
  bool inValue_ = false;
  bool headersDone_ = false;
  bool inMessage_ = false;
  size_t headerBytes_ = 0;
  const char* bufStart_ = nullptr;
  const char* bufEnd_ = nullptr;
  bool valueEndedAtBufferEnd_ = false;
  bool scanningHead_ = true;  // between messages or inside a head
  bool lineEmpty_ = false;
  bool pendingCr_ = false;
  bool autoResume_ = false;
  enum class Chunk : uint8_t {
    kOff,  // not in a chunked request body
    kSize,
    // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
    kExtSemi,       // BWS, then ";" (or the line end, after an extension)
    kExtNameStart,  // BWS, then a name
    kExtName,
    kExtAfterName,   // BWS, then "=", ";" or the line end
    kExtValueStart,  // BWS, then a token or a quoted string
    kExtToken,
    kExtQuoted,
    kExtEscape,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerStart,
    kTrailer,
    kTrailerLf,
    kEndLf,
  };
  Chunk chunk_ = Chunk::kOff;
  uint64_t chunkLeft_ = 0;
  int chunkDigits_ = 0;
  size_t chunkExtBytes_ = 0;
  bool chunkExtSeen_ = false;  // this chunk line has an extension (a line end may follow)
  Reason errorReason_ = Reason::kNone;
  std::string errorMessage_;
};

}  // namespace tether::proxy
