#pragma once
// A strict HTTP/1.1 request parser for the differential fuzz target, written from RFC 9112
// and RFC 9110 alone and sharing nothing with Tether's codec (no llhttp, no Tether code):
// what a careful origin server would understand from the same bytes.
//
// Strict means: CRLF line ends only; a request-line of token SP 1*VCHAR SP HTTP/1.0|1.1 (a run
// of SP counting as one, as RFC 9112 §3 allows);
// field lines of token ":" OWS value OWS with values of VCHAR, obs-text, SP and HTAB; no
// obs-fold; exactly one Host on HTTP/1.1, at most one on HTTP/1.0; framing from one
// Transfer-Encoding list ending in "chunked" (HTTP/1.1 only) or one Content-Length of
// digits, never both; chunk sizes in hex with optional extensions; trailers as field lines.
// Empty lines before a request-line are skipped (RFC 9112 §2.2).

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::fuzz {

struct StrictRequest {
  std::string method;
  std::string target;
  int versionMinor = 1;
  std::vector<std::pair<std::string, std::string>> fields;  // names lower-case, in order
  std::vector<std::pair<std::string, std::string>> trailers;
  std::string body;

  /// Every value of `name` (lower-case), in order.
  std::vector<std::string_view> values(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& [n, v] : fields) {
      if (n == name) out.push_back(v);
    }
    return out;
  }
  /// CONNECT, or an Upgrade offer: what follows the head may not be HTTP.
  bool tunnels() const { return method == "CONNECT" || !values("upgrade").empty(); }
};

class StrictHttp1 {
 public:
  enum class Status { kComplete, kIncomplete, kInvalid };

  /// Parses one request from the start of `in`. kComplete sets `used` (bytes taken) and
  /// `out`; kInvalid sets `why`. A tunnelling request is complete after its head and body.
  static Status parse(std::string_view in, StrictRequest& out, size_t& used, std::string& why) {
    StrictHttp1 p(in);
    Status s = p.request(out);
    used = p.at_;
    why = p.why_;
    return s;
  }

  static bool isTchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  }
  static bool isToken(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s) {
      if (!isTchar(c)) return false;
    }
    return true;
  }
  static std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  /// The elements of a comma-separated list (RFC 9110 §5.6.1), trimmed, empty ones dropped.
  static std::vector<std::string> list(std::string_view value) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      if (comma == std::string_view::npos) comma = value.size();
      std::string_view item = value.substr(start, comma - start);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty()) out.emplace_back(item);
      start = comma + 1;
    }
    return out;
  }

 private:
  explicit StrictHttp1(std::string_view in) : in_(in) {}

  /// RFC 9112 §3.2: origin-form for most, absolute-form (an http(s) URI needs a host,
  /// RFC 9110 §4.2), authority-form (host:port) for CONNECT only, "*" for OPTIONS only.
  static const char* targetFormError(std::string_view method, std::string_view target) {
    if (method == "CONNECT") {
      size_t colon = target.rfind(':');
      if (target[0] == '/' || colon == std::string_view::npos || colon == 0 ||
          colon + 1 == target.size() || target.find('/') != std::string_view::npos) {
        return "CONNECT target is not host:port";
      }
      return nullptr;
    }
    if (target[0] == '/') return nullptr;
    if (target == "*") return method == "OPTIONS" ? nullptr : "\"*\" target without OPTIONS";
    size_t scheme = target.find("://");
    if (scheme == std::string_view::npos || scheme == 0) return "target in no known form";
    for (size_t i = 0; i < scheme; ++i) {
      char c = target[i];
      bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))) {
        return "bad URI scheme";
      }
    }
    size_t host = scheme + 3;
    size_t end = std::min(target.find_first_of("/?#", host), target.size());
    if (end == host) return "absolute-form without a host";
    if (!validHost(target.substr(host, end - host))) return "invalid authority in the target";
    return nullptr;
  }

  Status fail(const char* why) {
    why_ = why;
    return Status::kInvalid;
  }
  /// The next line without its CRLF; false when no CRLF yet (or a bare CR/LF: invalid_).
  bool line(std::string_view& out) {
    for (size_t i = at_; i < in_.size(); ++i) {
      char c = in_[i];
      if (c == '\n') {
        invalid_ = "bare LF";
        return false;
      }
      if (c != '\r') continue;
      if (i + 1 >= in_.size()) return false;
      if (in_[i + 1] != '\n') {
        invalid_ = "bare CR";
        return false;
      }
      out = in_.substr(at_, i - at_);
      at_ = i + 2;
      return true;
    }
    return false;
  }
  Status lineStatus() { return invalid_ ? fail(invalid_) : Status::kIncomplete; }

  Status request(StrictRequest& r) {
    std::string_view l;
    do {
      if (!line(l)) return lineStatus();
    } while (l.empty());
    // Words separated by SP; RFC 9112 §3 lets a recipient take a run of SP as one (Tether
    // does, and forwards the line with single spaces).
    std::string_view words[3];
    size_t n = 0;
    for (size_t i = 0; i < l.size();) {
      size_t sp = std::min(l.find(' ', i), l.size());
      if (sp == i || n == 3) return fail("request-line is not three words");
      words[n++] = l.substr(i, sp - i);
      i = sp;
      while (i < l.size() && l[i] == ' ') ++i;
      if (i == l.size() && sp < l.size()) return fail("space at the end of the request-line");
    }
    if (n != 3) return fail("request-line is not three words");
    std::string_view method = words[0], target = words[1], version = words[2];
    if (!isToken(method)) return fail("method is not a token");
    if (target.empty()) return fail("empty request-target");
    for (unsigned char c : target) {
      if (c <= 0x20 || c >= 0x7f) return fail("request-target byte outside VCHAR");
    }
    if (version == "HTTP/1.1") {
      r.versionMinor = 1;
    } else if (version == "HTTP/1.0") {
      r.versionMinor = 0;
    } else {
      return fail("HTTP version not 1.0 or 1.1");
    }
    if (const char* why = targetFormError(method, target)) return fail(why);
    r.method = method;
    r.target = target;
    if (Status s = fieldLines(r.fields); s != Status::kComplete) return s;
    return body(r);
  }

  /// Host = uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2): a reg-name of
  /// unreserved, pct-encoded and sub-delims characters, or an IP literal in brackets.
  static bool validHost(std::string_view h) {
    if (h.empty()) return true;  // allowed when the target has no authority
    std::string_view port;
    if (h[0] == '[') {
      size_t close = h.find(']');
      if (close == std::string_view::npos) return false;
      for (char c : h.substr(1, close - 1)) {
        if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
      }
      h.remove_prefix(close + 1);
      if (!h.empty() && h[0] != ':') return false;
      port = h.empty() ? h : h.substr(1);
    } else {
      size_t colon = h.find(':');
      if (colon != std::string_view::npos) {
        port = h.substr(colon + 1);
        h = h.substr(0, colon);
      }
      if (h.empty()) return false;  // an http(s) URI has a host (RFC 9110 §4.2.1)
      for (size_t i = 0; i < h.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(h[i]);
        if (std::isalnum(c) || std::string_view("-._~!$&'()*+,;=").find(static_cast<char>(c)) !=
                                   std::string_view::npos) {
          continue;
        }
        if (c == '%' && i + 2 < h.size() && std::isxdigit(static_cast<unsigned char>(h[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(h[i + 2]))) {
          i += 2;
          continue;
        }
        return false;
      }
    }
    for (char c : port) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  }

  Status fieldLines(std::vector<std::pair<std::string, std::string>>& fields) {
    std::string_view l;
    while (true) {
      if (!line(l)) return lineStatus();
      if (l.empty()) return Status::kComplete;
      if (l[0] == ' ' || l[0] == '\t') return fail("obs-fold");
      size_t colon = l.find(':');
      if (colon == std::string_view::npos) return fail("field line without a colon");
      if (!isToken(l.substr(0, colon))) return fail("field name is not a token");
      std::string_view value = l.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
      }
      for (unsigned char c : value) {
        if ((c < 0x20 && c != '\t') || c == 0x7f) return fail("control byte in a field value");
      }
      fields.emplace_back(lower(l.substr(0, colon)), std::string(value));
    }
  }

  Status body(StrictRequest& r) {
    auto hosts = r.values("host");
    if (hosts.size() > 1) return fail("more than one Host");
    if (!hosts.empty() && !validHost(hosts[0])) return fail("invalid Host");
    if (r.versionMinor == 1 && hosts.empty()) return fail("HTTP/1.1 without Host");
    auto te = r.values("transfer-encoding");
    auto cl = r.values("content-length");
    if (!te.empty()) {
      if (r.versionMinor == 0) return fail("Transfer-Encoding on HTTP/1.0");
      if (!cl.empty()) return fail("Transfer-Encoding and Content-Length");
      std::vector<std::string> codings;
      for (std::string_view v : te) {
        for (auto& c : list(v)) codings.push_back(lower(c));
      }
      if (codings.empty() || codings.back() != "chunked") return fail("last coding not chunked");
      for (size_t i = 0; i + 1 < codings.size(); ++i) {
        if (codings[i] == "chunked") return fail("chunked applied twice");
      }
      return chunked(r);
    }
    uint64_t length = 0;
    if (!cl.empty()) {
      if (cl.size() > 1) return fail("more than one Content-Length");
      if (cl[0].empty() || cl[0].size() > 18) return fail("bad Content-Length");
      for (char c : cl[0]) {
        if (c < '0' || c > '9') return fail("bad Content-Length");
        length = length * 10 + static_cast<uint64_t>(c - '0');
      }
    }
    if (in_.size() - at_ < length) return Status::kIncomplete;
    r.body = in_.substr(at_, length);
    at_ += length;
    return Status::kComplete;
  }

  Status chunked(StrictRequest& r) {
    std::string_view l;
    while (true) {
      if (!line(l)) return lineStatus();
      size_t i = 0;
      uint64_t size = 0;
      for (; i < l.size(); ++i) {
        char c = l[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) break;
        if (i >= 15) return fail("chunk size too large");
        size = size * 16 + static_cast<uint64_t>(d);
      }
      if (i == 0) return fail("chunk size is not hex");
      if (Status s = extensions(l.substr(i)); s != Status::kComplete) return s;
      if (size == 0) return fieldLines(r.trailers);
      if (in_.size() - at_ < size + 2) return Status::kIncomplete;
      r.body.append(in_.substr(at_, size));
      at_ += size;
      if (in_.substr(at_, 2) != "\r\n") return fail("chunk data not followed by CRLF");
      at_ += 2;
    }
  }

  /// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
  Status extensions(std::string_view e) {
    auto ws = [&] {
      while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
    };
    auto token = [&] {
      size_t n = 0;
      while (n < e.size() && isTchar(static_cast<unsigned char>(e[n]))) ++n;
      e.remove_prefix(n);
      return n > 0;
    };
    while (true) {
      ws();
      if (e.empty()) return Status::kComplete;
      if (e.front() != ';') return fail("bad chunk extension");
      e.remove_prefix(1);
      ws();
      if (!token()) return fail("bad chunk extension name");
      ws();
      if (e.empty() || e.front() != '=') continue;
      e.remove_prefix(1);
      ws();
      if (!e.empty() && e.front() == '"') {
        size_t i = 1;
        for (; i < e.size() && e[i] != '"'; ++i) {
          unsigned char c = static_cast<unsigned char>(e[i]);
          if (c == '\\')
            ++i;
          else if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail("bad quoted chunk extension");
        }
        if (i >= e.size()) return fail("unterminated quoted chunk extension");
        e.remove_prefix(i + 1);
      } else if (!token()) {
        return fail("bad chunk extension value");
      }
    }
  }

  std::string_view in_;
  size_t at_ = 0;
  const char* why_ = "";
  const char* invalid_ = nullptr;
};

}  // namespace tether::fuzz
