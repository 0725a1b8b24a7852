// The tether executable: parses the command line and hands over to the libraries.

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "control/config_source.h"
#include "filters/chain.h"
#include "proxy/log.h"
#include "proxy/server.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  tether run [-c tether.yaml] [--log-level debug|info|warn|error]\n"
    "      run the proxy; without -c: the embedded default (admin 127.0.0.1:15000,\n"
    "      outbound 127.0.0.1:15001, inbound 0.0.0.0:15006 -> local app 127.0.0.1:8080)\n"
    "  tether validate -c tether.yaml [rules.yaml ...]\n"
    "      check a configuration; prints file:line:col: path: message per error\n"
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
  tether::control::ConfigSource source(a.config, a.files);
  tether::config::LoadResult r = source.load();
  if (!r.config) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "tether: %zu configuration error(s) in %s\n", r.errors.size(),
                 source.describe().c_str());
    return 1;
  }
  tether::proxy::Server server(r.config, tether::filters::buildSnapshot,
                               [source] { return source.load(); });
  return server.run();
}

}  // namespace

int main(int argc, char** argv) {
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
