// The tether executable: parses the command line and hands over to the libraries.

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "control/config_source.h"
#include "control/control_client.h"
#include "control/control_plane.h"
#include "control/file_watcher.h"
#include "control/inject.h"
#include "control/status.h"
#include "filters/chain.h"
#include "proxy/common/log.h"
#include "proxy/policy/hmac.h"
#include "proxy/server/server.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  tether run [-c tether.yaml] [--log-level debug|info|warn|error]\n"
    "      run the proxy; without -c: the embedded default (admin 127.0.0.1:15000,\n"
    "      outbound 127.0.0.1:15001, inbound 0.0.0.0:15006 -> local app 127.0.0.1:8080)\n"
    "  tether validate -c tether.yaml [rules.yaml ...]\n"
    "      check a configuration; prints file:line:col: path: message per error\n"
    "  tether sign --key-id ID --secret-file FILE [-X METHOD] [-H 'name: value']...\n"
    "              [--signed-header NAME]... [-d DATA | --data-file FILE | --unsigned-payload]\n"
    "              [--host HOST] [--date YYYYMMDDTHHMMSSZ] [--nonce N] [--canonical] URL\n"
    "      print the TETHER-HMAC-SHA256 headers that sign a request (one 'name: value'\n"
    "      per line), e.g. for curl; the -H headers are signed too. --canonical also\n"
    "      prints the canonical request and the string to sign on stderr\n"
    "  tether inject -f FILE|- [-f FILE]... [--image IMAGE] [--config-map NAME]\n"
    "                [--proxy-uid UID] [--drain-timeout SECONDS] [--admin-port PORT]\n"
    "                [--exclude-inbound-ports L] [--exclude-outbound-ports L]\n"
    "      print the Kubernetes YAML with the Tether sidecar added to every pod template\n"
    "      (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, List);\n"
    "      injecting twice changes nothing\n"
    "  tether control-plane --rules DIR [--listen ADDR] [--admin ADDR]\n"
    "                       [--instance-grace DURATION]\n"
    "      the reference control plane: serves the rule documents in DIR (watched) to\n"
    "      every connected sidecar and keeps the registry of instances\n"
    "      (defaults: --listen 127.0.0.1:15010 --admin 127.0.0.1:15011 --instance-grace 10s)\n"
    "  tether status [--control-plane ADMIN_ADDR] [--json]\n"
    "      every sidecar connected to the control plane: acked version, sync state, last\n"
    "      NACK and its reasons (default 127.0.0.1:15011, the control plane's admin port)\n"
    "  tether version\n";

struct Args {
  std::string command;
  std::string config;
  std::vector<std::string> files;
  std::string logLevel = "info";
  bool ok = true;
};

Args parse(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    a.ok = false;
    return a;
  }
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      a.config = argv[++i];
    } else if (arg == "--log-level" && i + 1 < argc) {
      a.logLevel = argv[++i];
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "tether: unknown option %s\n", arg.c_str());
      a.ok = false;
    } else {
      a.files.push_back(arg);
    }
  }
  return a;
}

int validate(const Args& a) {
  if (a.config.empty()) {
    std::fprintf(stderr, "tether validate: -c FILE is required\n");
    return 2;
  }
  tether::config::LoadResult r = tether::config::loadFromFiles(a.config, a.files);
  // What `tether run` reads besides: certificates, keys, CA bundles, HMAC secrets.
  if (r.config) {
    r.errors = tether::proxy::prepareConfigFiles(*r.config, true);
    if (!r.errors.empty()) r.config.reset();
  }
  for (const auto& e : r.errors) std::printf("%s\n", e.format().c_str());
  if (!r.config) {
    std::fprintf(stderr, "%zu error(s)\n", r.errors.size());
    return 1;
  }
  std::printf("ok: %zu service(s), %zu route(s), %zu rule document(s)\n",
              r.config->services.size() - 1, r.config->routes.size(), r.config->documents.size());
  return 0;
}

int run(const Args& a) {
  using tether::proxy::LogLevel;
  if (a.logLevel == "debug") tether::proxy::setLogLevel(LogLevel::kDebug);
  if (a.logLevel == "warn") tether::proxy::setLogLevel(LogLevel::kWarn);
  if (a.logLevel == "error") tether::proxy::setLogLevel(LogLevel::kError);
  auto source = std::make_shared<tether::control::ConfigSource>(a.config, a.files);
  tether::config::LoadResult r = source->load();
  if (!r.config) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "tether: %zu configuration error(s) in %s\n", r.errors.size(),
                 source->describe().c_str());
    return 1;
  }
  bool controlPlane = r.config->bootstrap.rules.controlPlane.has_value();
  // The last snapshot the control plane got an ACK for, when the bootstrap keeps one: the
  // first configuration includes it, so a restart while the control plane is away serves
  // the same rules as before.
  std::optional<tether::control::PushedSnapshot> restored;
  if (controlPlane && !r.config->bootstrap.rules.controlPlane->cacheFile.empty()) {
    const std::string& file = r.config->bootstrap.rules.controlPlane->cacheFile;
    restored = tether::control::PushedSnapshot::readCache(file);
    if (restored) {
      source->setControlPlaneDocuments(restored->documents);
      tether::config::LoadResult withCache = source->load();
      if (withCache.config) {
        r = std::move(withCache);
      } else {
        for (const auto& e : withCache.errors) {
          std::fprintf(stderr, "control plane cache %s: %s\n", file.c_str(), e.format().c_str());
        }
        source->setControlPlaneDocuments({});
        restored.reset();
      }
    }
  }
  tether::proxy::Server server(r.config, tether::filters::buildSnapshot, [source] {
    // A copy: the load runs on another thread while the
    // control-plane client may replace the documents.
    return [copy = *source] { return copy.load(); };
  });
  std::vector<std::string> watched = a.files;
  if (!a.config.empty()) watched.insert(watched.begin(), a.config);
  server.addPlugin(std::make_unique<tether::control::RulesWatch>(std::move(watched)));
  if (controlPlane) {
    server.addPlugin(
        std::make_unique<tether::control::ControlPlaneClient>(source, std::move(restored)));
  }
  return server.run();
}

/// The whole of `path` ("-": standard input).
bool readFile(const std::string& path, std::string& out) {
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  if (f != stdin) std::fclose(f);
  return true;
}

int inject(int argc, char** argv) {
  tether::control::InjectOptions o;
  o.image = std::string("tether:") + TETHER_VERSION;
  std::vector<std::string> files;
  bool ok = true;
  for (int i = 2; i < argc && ok; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 < argc) return argv[++i];
      ok = false;
      return "";
    };
    auto number = [&](uint32_t max) -> uint32_t {
      std::string v = next();
      char* end = nullptr;
      unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n > max) ok = false;
      return static_cast<uint32_t>(n);
    };
    if (arg == "-f" || arg == "--filename") {
      files.push_back(next());
    } else if (arg == "--image") {
      o.image = next();
    } else if (arg == "--config-map") {
      o.configMap = next();
    } else if (arg == "--proxy-uid") {
      o.proxyUid = number(UINT32_MAX);
    } else if (arg == "--drain-timeout") {
      o.drainSeconds = number(3600);
    } else if (arg == "--admin-port") {
      o.adminPort = static_cast<uint16_t>(number(65535));
    } else if (arg == "--exclude-inbound-ports") {
      o.excludeInboundPorts = next();
    } else if (arg == "--exclude-outbound-ports") {
      o.excludeOutboundPorts = next();
    } else {
      ok = false;
    }
  }
  if (!ok || files.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  int injected = 0, unchanged = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    std::string input;
    if (!readFile(files[i], input)) {
      std::fprintf(stderr, "tether inject: cannot read %s\n", files[i].c_str());
      return 1;
    }
    tether::control::InjectResult r = tether::control::inject(input, o);
    if (!r.error.empty()) {
      std::fprintf(stderr, "%s:%s\n", files[i].c_str(), r.error.c_str());
      return 1;
    }
    if (i > 0) std::fputs("---\n", stdout);
    std::fputs(r.yaml.c_str(), stdout);
    injected += r.injected;
    unchanged += r.unchanged;
  }
  std::fprintf(stderr, "tether inject: %d pod template(s) injected, %d left as they were\n",
               injected, unchanged);
  return 0;
}

int controlPlane(int argc, char** argv) {
  tether::control::ControlPlaneOptions o;
  bool ok = true;
  for (int i = 2; i < argc && ok; ++i) {
    std::string arg = argv[i];
    std::string value = i + 1 < argc ? argv[i + 1] : "";
    if (i + 1 >= argc) {
      ok = false;
      break;
    }
    ++i;
    if (arg == "--rules") {
      o.rulesDir = value;
    } else if (arg == "--listen" || arg == "--admin") {
      auto a = tether::config::parseAddress(value);
      if (!a) {
        std::fprintf(stderr, "tether control-plane: %s: not an ip:port: %s\n", arg.c_str(),
                     value.c_str());
        return 2;
      }
      (arg == "--listen" ? o.listen : o.admin) = *a;
    } else if (arg == "--instance-grace") {
      auto d = tether::config::parseDuration(value);
      if (!d) {
        std::fprintf(stderr, "tether control-plane: --instance-grace: not a duration: %s\n",
                     value.c_str());
        return 2;
      }
      o.instanceGrace = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    } else {
      ok = false;
    }
  }
  if (!ok || o.rulesDir.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  tether::control::ControlPlaneServer server(o);
  return server.run();
}

int status(int argc, char** argv) {
  tether::config::Address admin{"127.0.0.1", 15011};
  bool json = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--control-plane" && i + 1 < argc) {
      auto a = tether::config::parseAddress(argv[++i]);
      if (!a) {
        std::fprintf(stderr, "tether status: not an ip:port: %s\n", argv[i]);
        return 2;
      }
      admin = *a;
    } else if (arg == "--json") {
      json = true;
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  return tether::control::printStatus(admin, json);
}

int sign(int argc, char** argv) {
  namespace hmac = tether::proxy::hmac;
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
      if (!readFile(next(), body)) {
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
  if (!readFile(secretFile, secret)) {
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

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "sign") == 0) return sign(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "inject") == 0) return inject(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "control-plane") == 0) return controlPlane(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "status") == 0) return status(argc, argv);
  Args a = parse(argc, argv);
  if (!a.ok) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (a.command == "run") return run(a);
  if (a.command == "validate") return validate(a);
  if (a.command == "version" || a.command == "--version") {
    std::printf("tether %s\n", TETHER_VERSION);
    return 0;
  }
  if (a.command == "help" || a.command == "--help" || a.command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "tether: unknown command \"%s\"\n", a.command.c_str());
  std::fputs(kUsage, stderr);
  return 2;
}
