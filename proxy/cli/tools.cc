// The commands around the proxy: `tether inject` (Kubernetes manifests), `tether
// control-plane` (the reference control plane) and `tether status` (what it serves).

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "config/address.h"
#include "config/config.h"
#include "config/duration.h"
#include "control/control_plane.h"
#include "control/inject.h"
#include "control/status.h"
#include "proxy/cli/commands.h"

namespace tether::cli {

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
    if (!config::readFile(files[i], input)) {
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

}  // namespace tether::cli
