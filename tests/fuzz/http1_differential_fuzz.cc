// The differential check for HTTP/1 (the smuggling classes, not only crashes). The input
// goes to a real downstream connection of a worker whose filter chain is the real one
// (routing to one Service on a real socket, the router's HTTP/1 upstream codec); a fake
// upstream reads what Tether forwards and answers each request. Then, with a strict parser
// written from the RFCs alone (strict_http1.h):
//   - every byte Tether forwards must parse strictly;
//   - each request Tether forwarded must be the request the strict parser reads at the same
//     place in the client's bytes: same method, target (after the documented path
//     normalization), Host, header fields (less the hop-by-hop ones, and those Tether
//     documents as dropped or rewritten), body and trailers;
//   - a request Tether refuses must be one the strict parser refuses too, or one
//     docs/operations.md ("What Tether refuses") lists;
//   - a request the strict parser refuses must not be forwarded.
// Any difference aborts with both readings.
//
// Input: one byte for the size of the socket writes (0: all at once), then the client's
// bytes (the http1_request corpus has the same shape).

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "filters/chain.h"
#include "proxy/codec/path_normalizer.h"
#include "proxy/upstream/endpoint_health.h"
#include "tests/fuzz/connection_harness.h"
#include "tests/fuzz/strict_http1.h"

using namespace tether;
using tether::fuzz::StrictHttp1;
using tether::fuzz::StrictRequest;
using Fields = std::vector<std::pair<std::string, std::string>>;

namespace {

struct Env {
  int listenFd = -1;
  uint16_t port = 0;
  std::shared_ptr<const config::Config> config;
  config::ListenerConfig listener;
  proxy::HealthRegistry health;
  filters::FilterChains chains;
  proxy::SnapshotPtr snapshot;

  Env() {
    listenFd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(listenFd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(listenFd, 64) != 0 ||
        ::getsockname(listenFd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::perror("fake upstream");
      std::abort();
    }
    port = ntohs(a.sin_port);
    std::string rules =
        "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: up }\nspec:\n  "
        "endpoints: [ { address: 127.0.0.1:" +
        std::to_string(port) +
        " } ]\n---\napiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: all }\nspec:\n "
        " hosts: [ \"*\" ]\n"
        "  rules: [ { backends: [ { service: up } ] } ]\n";
    config::LoadResult r = config::loadFromSources(config::Source{"boot.yaml", ""},
                                                   {config::Source{"rules.yaml", rules}}, false);
    if (!r.config) {
      for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.format().c_str());
      std::abort();
    }
    config = r.config;
    listener.name = "fuzz";
    listener.protocol = config::ListenerProtocol::kHttp1;
    snapshot = chains.build(config, 1, health);
  }
};

/// One connection Tether opened to the fake upstream: the bytes it sent, parsed as they
/// come; each complete request is answered at once.
struct UpstreamConn {
  int fd;
  std::string in;
  bool tunnel = false;  // a tunnel, or bytes that are not HTTP: no longer parsed
  std::string invalid;  // why the strict parser refused what came
};

struct Exchange {
  std::vector<StrictRequest> forwarded;  // in the order the upstream received them
  std::vector<UpstreamConn> upstream;

  /// Accepts, reads and answers; returns whether anything moved.
  bool serve(int listenFd) {
    bool moved = false;
    int fd;
    while ((fd = ::accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
      upstream.push_back(UpstreamConn{fd, {}});
      moved = true;
    }
    for (auto& u : upstream) {
      char buf[65536];
      ssize_t n;
      while ((n = ::recv(u.fd, buf, sizeof(buf), 0)) > 0) {
        u.in.append(buf, static_cast<size_t>(n));
        moved = true;
      }
      while (!u.tunnel && !u.in.empty()) {
        StrictRequest r;
        size_t used = 0;
        std::string why;
        StrictHttp1::Status s = StrictHttp1::parse(u.in, r, used, why);
        if (s == StrictHttp1::Status::kIncomplete) break;
        if (s == StrictHttp1::Status::kInvalid) {  // judged once the exchange is over
          u.invalid = why;
          u.tunnel = true;
          break;
        }
        u.in.erase(0, used);
        u.tunnel = r.tunnels();
        std::string answer = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-forwarded-index: " +
                             std::to_string(forwarded.size()) + "\r\n\r\n";
        (void)!::send(u.fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        forwarded.push_back(std::move(r));
      }
    }
    return moved;
  }
  ~Exchange() {
    for (auto& u : upstream) ::close(u.fd);
  }
};

/// One response Tether sent the client.
struct Answer {
  int status = 0;
  std::string reason;  // x-tether-reason
  long forwardedIndex = -1;
};

/// Tether's responses, in order (1xx skipped), as far as they are complete.
std::vector<Answer> answers(std::string_view out) {
  std::vector<Answer> list;
  while (true) {
    size_t end = out.find("\r\n\r\n");
    if (end == std::string_view::npos || out.size() < 12) return list;
    Answer a;
    a.status = std::atoi(std::string(out.substr(9, 3)).c_str());
    std::string_view head = out.substr(0, end + 2);
    out.remove_prefix(end + 4);
    int64_t length = 0;
    bool chunked = false;
    for (size_t at = head.find("\r\n") + 2; at < head.size();) {
      size_t eol = head.find("\r\n", at);
      std::string_view line = head.substr(at, eol - at);
      at = eol + 2;
      size_t colon = line.find(':');
      std::string name = StrictHttp1::lower(line.substr(0, colon));
      std::string value(line.substr(colon + 2));
      if (name == "content-length") length = std::atoll(value.c_str());
      if (name == "transfer-encoding") chunked = true;
      if (name == "x-tether-reason") a.reason = value;
      if (name == "x-forwarded-index") a.forwardedIndex = std::atol(value.c_str());
    }
    if (a.status >= 100 && a.status < 200) continue;
    if (chunked) {
      while (true) {
        size_t eol = out.find("\r\n");
        if (eol == std::string_view::npos) return list;
        int64_t size = std::strtoll(std::string(out.substr(0, eol)).c_str(), nullptr, 16);
        if (static_cast<int64_t>(out.size()) < static_cast<int64_t>(eol + 2) + size + 2) {
          return list;
        }
        out.remove_prefix(eol + 2 + size + 2);
        if (size == 0) break;
      }
    } else {
      if (static_cast<int64_t>(out.size()) < length) return list;
      out.remove_prefix(length);
    }
    list.push_back(a);
  }
}

/// The fields compared: without the hop-by-hop ones (RFC 9110 §7.6.1, and every field
/// Connection names), framing (compared as the body), Host (compared on its own), and what
/// Tether documents as dropped or rewritten: Expect, names with '_', HTTP2-Settings of an
/// h2c offer, Via and X-Forwarded-For (appended to), x-tether-* (its own).
Fields comparable(const Fields& in) {
  std::vector<std::string> named;
  for (const auto& [n, v] : in) {
    if (n == "connection") {
      for (auto& item : StrictHttp1::list(v)) named.push_back(StrictHttp1::lower(item));
    }
  }
  static const std::string_view kDropped[] = {
      "connection", "keep-alive",      "proxy-connection", "te",   "transfer-encoding",
      "upgrade",    "trailer",         "content-length",   "host", "expect",
      "via",        "x-forwarded-for", "http2-settings"};
  Fields out;
  for (const auto& f : in) {
    const std::string& n = f.first;
    if (std::find(std::begin(kDropped), std::end(kDropped), n) != std::end(kDropped)) continue;
    if (std::find(named.begin(), named.end(), n) != named.end()) continue;
    if (n.find('_') != std::string::npos || n.rfind("x-tether-", 0) == 0) continue;
    out.push_back(f);
  }
  return out;
}

std::string show(const StrictRequest& r) {
  std::string s = r.method + " " + r.target + " HTTP/1." + std::to_string(r.versionMinor) + "\n";
  for (const auto& [n, v] : r.fields) s += "  " + n + ": " + v + "\n";
  s += "  body (" + std::to_string(r.body.size()) + " bytes)\n";
  for (const auto& [n, v] : r.trailers) s += "  trailer " + n + ": " + v + "\n";
  return s;
}

std::string tetherAnswered;  // what the client got, for the report

[[noreturn]] void differs(const char* what, const StrictRequest& strict,
                          const StrictRequest* forwarded) {
  std::fprintf(stderr, "DIFFERENCE: %s\nstrict parser read:\n%s", what, show(strict).c_str());
  if (forwarded) std::fprintf(stderr, "Tether forwarded:\n%s", show(*forwarded).c_str());
  std::fprintf(stderr, "Tether answered:\n%.2000s\n", tetherAnswered.c_str());
  std::abort();
}

/// The request Tether should forward for what the strict parser read, as far as the
/// target goes: absolute-form split into Host and path, the path normalized as documented.
/// Empty with `rejected` when the path normalization refuses it.
std::string expectedTarget(const StrictRequest& r, std::string& host, bool& rejected) {
  std::string target = r.target;
  auto hosts = r.values("host");
  host = hosts.empty() ? "" : StrictHttp1::lower(hosts[0]);
  if (r.method != "CONNECT" && target[0] != '/' && target != "*") {
    size_t start = target.find("://") + 3;
    size_t path = target.find_first_of("/?#", start);
    host =
        StrictHttp1::lower(target.substr(start, path == std::string::npos ? path : path - start));
    target = path == std::string::npos ? "/"
             : target[path] == '/'     ? target.substr(path)
                                       : "/" + target.substr(path);
  }
  static const config::PathNormalization options;
  const char* why = nullptr;
  rejected = proxy::PathNormalizer(options).normalize(target, why) ==
             proxy::PathNormalizer::Result::kRejected;
  return target;
}

/// docs/operations.md, "What Tether refuses", beyond what a strict parser refuses.
bool documentedRefusal(const StrictRequest& r) {
  static const std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                              "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  if (std::find(std::begin(kMethods), std::end(kMethods), r.method) == std::end(kMethods)) {
    return true;  // a method llhttp does not know
  }
  std::string host;
  bool rejected = false;
  expectedTarget(r, host, rejected);
  if (rejected) return true;                             // a path the normalization refuses
  if (host.empty() && r.versionMinor == 1) return true;  // HTTP/1.1 with an empty Host
  if (r.method != "CONNECT" && r.target[0] != '/' && r.target != "*") {
    // absolute-form: a scheme other than http(s), or a fragment
    std::string scheme = StrictHttp1::lower(r.target.substr(0, r.target.find("://")));
    if ((scheme != "http" && scheme != "https") || r.target.find('#') != std::string::npos) {
      return true;
    }
  }
  for (const auto& [name, value] : r.trailers) {
    if (name == "transfer-encoding" || name == "content-length") return true;  // framing
  }
  auto te = r.values("transfer-encoding");
  return te.size() > 1 || (te.size() == 1 && StrictHttp1::lower(te[0]) != "chunked");
}

void compare(const StrictRequest& strict, const StrictRequest& fwd) {
  if (fwd.method != strict.method) differs("method", strict, &fwd);
  std::string host;
  bool rejected = false;
  std::string target = expectedTarget(strict, host, rejected);
  if (rejected) differs("forwarded a path the normalization refuses", strict, &fwd);
  if (fwd.target != target) differs("target", strict, &fwd);
  auto fwdHosts = fwd.values("host");
  if (fwdHosts.size() != 1 || (!host.empty() && fwdHosts[0] != host)) {
    differs("Host", strict, &fwd);
  }
  if (comparable(fwd.fields) != comparable(strict.fields)) differs("header fields", strict, &fwd);
  if (fwd.body != strict.body) differs("body", strict, &fwd);
  if (comparable(fwd.trailers) != comparable(strict.trailers)) differs("trailers", strict, &fwd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env env;
  if (size == 0) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t piece = data[0] == 0 ? bytes.size() : std::max<size_t>(data[0], bytes.size() / 64 + 1);

  Exchange exchange;
  std::string out;
  {
    tether::fuzz::ConnectionHarness h(env.config->bootstrap, env.snapshot, env.listener);
    if (!h.ok()) return 0;
    h.keepReceived();
    // Runs the loop until neither side has moved for a few turns.
    auto pump = [&] {
      for (int idle = 0, turns = 0; idle < 4 && turns < 400; ++turns) {
        bool moved = h.turn() > 0;
        moved = exchange.serve(env.listenFd) || moved;
        idle = moved ? 0 : idle + 1;
      }
    };
    h.write(bytes, piece, pump);
    pump();
    out = h.received();
  }
  tetherAnswered = out;

  // What a strict server reads from the same bytes, request by request.
  std::vector<StrictRequest> strict;
  std::string_view rest = bytes;
  bool strictRefused = false, strictStopped = false;
  std::string strictWhy;
  while (!rest.empty()) {
    StrictRequest r;
    size_t used = 0;
    StrictHttp1::Status s = StrictHttp1::parse(rest, r, used, strictWhy);
    if (s == StrictHttp1::Status::kIncomplete) break;
    if (s == StrictHttp1::Status::kInvalid) {
      strictRefused = true;
      break;
    }
    rest.remove_prefix(used);
    bool tunnels = r.tunnels();
    strict.push_back(std::move(r));
    if (tunnels) {  // what follows is not HTTP
      strictStopped = true;
      break;
    }
  }

  std::vector<Answer> got = answers(out);
  // CONNECT is answered by Tether (200) and tunnelled: its upstream bytes are the client's.
  bool tunnelled = std::any_of(got.begin(), got.end(), [](const Answer& a) {
    return a.status / 100 == 2 && a.forwardedIndex < 0;
  });
  for (const auto& u : exchange.upstream) {
    if (!u.invalid.empty() && !tunnelled) {
      std::fprintf(stderr, "DIFFERENCE: Tether forwarded bytes a strict parser refuses (%s):\n%s\n",
                   u.invalid.c_str(), u.in.c_str());
      std::abort();
    }
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const Answer& a = got[i];
    if (i >= strict.size()) {
      // Tether answered a request the strict parser never completed: only a refusal may.
      if (a.forwardedIndex >= 0 && !strictStopped) {
        StrictRequest none;
        none.method = strictRefused ? "(refused: " + strictWhy + ")" : "(incomplete)";
        differs("forwarded a request the strict parser does not accept", none,
                &exchange.forwarded.at(a.forwardedIndex));
      }
      break;
    }
    const StrictRequest& r = strict[i];
    if (r.tunnels()) break;  // CONNECT and Upgrade: what follows may be bytes
    if (a.forwardedIndex >= 0) {
      compare(r, exchange.forwarded.at(a.forwardedIndex));
      continue;
    }
    // A local reply to a request the strict parser accepts.
    if (a.reason == "bad_request" && !documentedRefusal(r)) {
      differs("refused (400) a request the strict parser accepts, not documented", r, nullptr);
    }
    break;  // every codec refusal closes the connection
  }
  return 0;
}
