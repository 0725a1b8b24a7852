// What `tether run` reads besides the configuration: certificates, keys, CA bundles and
// HMAC secrets, loaded (and kept for the workers) and checked with the position of the
// field that names them. `tether validate` runs the same checks.

#include "proxy/network/tls.h"
#include "proxy/policy/hmac.h"
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
                                        SharedState& state) {
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
      if (!state.tls.client(*service.tls, alpn, error)) {
        errors.push_back(atField(service.tlsFiles, "Service " + name + ": spec.tls", error));
        break;
      }
    }
  }
  for (const auto& h : config.hmacAuths) {
    for (const auto& k : h.keys) {
      if (!state.secrets.load(k.secretFile, error)) {
        const config::FieldPosition& at = k.secretAt;
        errors.push_back({at.line ? at.file : h.origin.file, at.line ? at.line : h.origin.line,
                          at.line ? at.column : h.origin.column,
                          at.line ? at.path : std::string("spec.keys"),
                          "HmacAuth " + h.name + ": key " + k.id + ": " + error});
      }
    }
  }
  if (!listeners) return errors;
  for (const auto& lc : config.bootstrap.listeners) {
    if (lc.tls && !state.tls.server(*lc.tls, error)) {
      errors.push_back(atField(lc.tlsFiles, "listeners." + lc.name + ".tls", error));
    }
  }
  return errors;
}

}  // namespace tether::proxy
