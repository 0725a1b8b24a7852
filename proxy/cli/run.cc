// `tether run` and `tether validate`: the proxy itself, and the check of what it would read.

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "control/config_source.h"
#include "control/control_client.h"
#include "control/file_watcher.h"
#include "filters/chain.h"
#include "proxy/cli/commands.h"
#include "proxy/common/log.h"
#include "proxy/server/server.h"

namespace tether::cli {

namespace {

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

int validateArgs(const Args& a) {
  if (a.config.empty()) {
    std::fprintf(stderr, "tether validate: -c FILE is required\n");
    return 2;
  }
  tether::config::LoadResult r = tether::config::loadFromFiles(a.config, a.files);
  // What `tether run` reads besides: certificates, keys, CA bundles, HMAC secrets.
  if (r.config) {
    tether::proxy::TlsRegistry tls;  // only to read the files once
    tether::filters::FilterChains filters;
    r.errors = tether::proxy::prepareConfigFiles(*r.config, true, tls, filters);
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

int runArgs(const Args& a) {
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
  tether::proxy::Server server(r.config, std::make_unique<tether::filters::FilterChains>(),
                               [source] {
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

/// Parses argv for run and validate; bad usage prints the usage and gives 2.
template <class Command>
int withArgs(int argc, char** argv, Command command) {
  Args a = parse(argc, argv);
  if (!a.ok) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  return command(a);
}

}  // namespace

int run(int argc, char** argv) { return withArgs(argc, argv, runArgs); }

int validate(int argc, char** argv) { return withArgs(argc, argv, validateArgs); }

}  // namespace tether::cli
