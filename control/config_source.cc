#include "control/config_source.h"

namespace tether::control {

config::LoadResult ConfigSource::load() const {
  if (bootstrapPath_.empty()) {
    return config::loadFromSources(
        config::Source{"<embedded default>", config::embeddedDefaultYaml()}, controlPlane_, true);
  }
  return config::loadFromFiles(bootstrapPath_, extraRuleFiles_, controlPlane_);
}

std::string ConfigSource::describe() const {
  return bootstrapPath_.empty() ? "<embedded default>" : bootstrapPath_;
}

}  // namespace tether::control
