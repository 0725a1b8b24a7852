// `tether sign`: the TETHER-HMAC-SHA256 headers for a request, for scripts and curl.

#include <cstdio>
#include <string>
#include <vector>

#include "config/config.h"
#include "filters/auth/hmac.h"
#include "proxy/cli/commands.h"
#include "proxy/codec/headers.h"

namespace tether::cli {

int sign(int argc, char** argv) {
  namespace hmac = tether::filters::hmac;
  std::string keyId, secretFile, method = "GET", url, host, date, nonce, body;
  std::vector<std::string> signedHeaders;
  tether::proxy::HeaderMap headers;
  bool unsignedPayload = false, canonical = false, ok = true;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 < argc) return argv[++i];
      ok = false;
      return "";
    };
    if (arg == "--key-id") {
      keyId = next();
    } else if (arg == "--secret-file") {
      secretFile = next();
    } else if (arg == "-X" || arg == "--request") {
      method = next();
    } else if (arg == "-H" || arg == "--header") {
      std::string h = next();
      size_t colon = h.find(':');
      if (colon == std::string::npos) {
        ok = false;
        continue;
      }
      std::string name = h.substr(0, colon);
      tether::proxy::toLowerInPlace(name);
      std::string value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      signedHeaders.push_back(name);  // every header given is signed
      headers.add(name, value);
    } else if (arg == "--signed-header") {
      signedHeaders.push_back(next());
    } else if (arg == "-d" || arg == "--data") {
      body = next();
    } else if (arg == "--data-file") {
      if (!config::readFile(next(), body)) {
        std::fprintf(stderr, "tether sign: cannot read %s\n", argv[i]);
        return 1;
      }
    } else if (arg == "--unsigned-payload") {
      unsignedPayload = true;
    } else if (arg == "--host") {
      host = next();
    } else if (arg == "--date") {
      date = next();
    } else if (arg == "--nonce") {
      nonce = next();
    } else if (arg == "--canonical") {
      canonical = true;
    } else if (!arg.empty() && arg[0] != '-' && url.empty()) {
      url = arg;
    } else {
      ok = false;
    }
  }
  if (!ok || keyId.empty() || secretFile.empty() || url.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  // http://authority/target: the authority is what curl sends as Host.
  size_t scheme = url.find("://");
  std::string rest = scheme == std::string::npos ? url : url.substr(scheme + 3);
  size_t slash = rest.find_first_of("/?");
  if (host.empty()) host = rest.substr(0, slash);
  std::string target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (target[0] == '?') target = "/" + target;
  std::string secret;
  if (!config::readFile(secretFile, secret)) {
    std::fprintf(stderr, "tether sign: cannot read %s\n", secretFile.c_str());
    return 1;
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  if (!date.empty()) {
    auto parsed = hmac::parseDate(date);
    if (!parsed) {
      std::fprintf(stderr, "tether sign: --date must look like 20261126T153000Z\n");
      return 2;
    }
    now = *parsed;
  }
  std::string payload =
      unsignedPayload ? std::string(hmac::kUnsignedPayload) : hmac::sha256Hex(body);
  hmac::RequestView view{method, target, host, &headers};
  hmac::Signature s = hmac::sign(view, keyId, hmac::HmacKey(secret), signedHeaders, payload, now,
                                 nonce.empty() ? hmac::newNonce() : nonce);
  if (canonical) {
    tether::proxy::HeaderMap all = headers;
    all.set(hmac::kContentHeader, s.contentSha256);
    all.set(hmac::kDateHeader, s.date);
    all.set(hmac::kNonceHeader, s.nonce);
    view.headers = &all;
    std::string c = hmac::canonicalRequest(view, hmac::signedHeaderNames(signedHeaders), payload);
    std::fprintf(stderr, "--- canonical request\n%s\n--- string to sign\n%s\n---\n", c.c_str(),
                 hmac::stringToSign(s.date, keyId, c).c_str());
  }
  std::printf("authorization: %s\n%s: %s\n%s: %s\n%s: %s\n", s.authorization.c_str(),
              std::string(hmac::kDateHeader).c_str(), s.date.c_str(),
              std::string(hmac::kNonceHeader).c_str(), s.nonce.c_str(),
              std::string(hmac::kContentHeader).c_str(), s.contentSha256.c_str());
  return 0;
}

}  // namespace tether::cli
