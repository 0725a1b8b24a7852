#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace tether::control {

/// Where `tether run` reads its configuration from: a bootstrap file (or the embedded
/// default) plus extra rule files. load() re-reads everything, so the same object serves
/// the first start and every reload (SIGHUP, POST /reload).
class ConfigSource {
 public:
  /// An empty `bootstrapPath` means the embedded default.
  ConfigSource(std::string bootstrapPath, std::vector<std::string> extraRuleFiles)
      : bootstrapPath_(std::move(bootstrapPath)), extraRuleFiles_(std::move(extraRuleFiles)) {}

  config::LoadResult load() const;
  std::string describe() const;

  /// The rule documents the control plane sent last (and that load() includes).
  void setControlPlaneDocuments(std::vector<config::Source> documents) {
    controlPlane_ = std::move(documents);
  }
  const std::vector<config::Source>& controlPlaneDocuments() const { return controlPlane_; }

 private:
  std::string bootstrapPath_;
  std::vector<std::string> extraRuleFiles_;
  std::vector<config::Source> controlPlane_;
};

}  // namespace tether::control
