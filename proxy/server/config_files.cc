// What `tether run` reads besides the configuration: certificates, keys and CA bundles
// here, and what the filters' rules name (HMAC secrets) through them, loaded (and kept for
// the workers) and checked with the position of the field that names them. `tether
// validate` runs the same checks.

#include "proxy/network/tls.h"
#include "proxy/server/server.h"

namespace tether::proxy {

namespace {

/// An error in a file that a field names, at that field: the field whose file the error
/// message names, else the first of the block.
config::ConfigError atField(const config::FileFields& fields, const std::string& fallbackPath,
                            const std::string& message) {
  const config::FieldPosition* at = nullptr;
  for (const auto& [file, pos] : fields) {
    if (!file.empty() && message.find(file) != std::string::npos) {
      at = &pos;
      break;
    }
  }
  if (!at && !fields.empty()) at = &fields.begin()->second;
  if (!at) return config::ConfigError{"", 0, 0, fallbackPath, message};
  return config::ConfigError{at->file, at->line, at->column, at->path, message};
}

}  // namespace

config::ConfigErrors prepareConfigFiles(const config::Config& config, bool listeners,
                                        TlsRegistry& tls, FilterRuntime& filters) {
  config::ConfigErrors errors;
  std::string error;
  for (const auto& [name, service] : config.services) {
    if (!service.tls) continue;
    std::vector<const char*> alpns;
    switch (service.protocol) {
      case config::Protocol::kHttp2:
        alpns = {"h2"};
        break;
      case config::Protocol::kHttp1:
        alpns = {"http/1.1"};
        break;
      case config::Protocol::kAuto:
        alpns = {"h2,http/1.1", "h2", "http/1.1"};
        break;
    }
    for (const char* alpn : alpns) {
      if (!tls.client(*service.tls, alpn, error)) {
        errors.push_back(atField(service.tlsFiles, "Service " + name + ": spec.tls", error));
        break;
      }
    }
  }
  config::ConfigErrors theirs = filters.prepareFiles(config);
  errors.insert(errors.end(), theirs.begin(), theirs.end());
  if (!listeners) return errors;
  for (const auto& lc : config.bootstrap.listeners) {
    if (lc.tls && !tls.server(*lc.tls, error)) {
      errors.push_back(atField(lc.tlsFiles, "listeners." + lc.name + ".tls", error));
    }
  }
  return errors;
}

}  // namespace tether::proxy
