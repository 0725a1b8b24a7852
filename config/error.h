#pragma once

#include <string>
#include <vector>

namespace tether::config {

/// One problem found in a configuration source. Line and column are 1-based; 0 means
/// unknown (for example a file that could not be opened).
struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;  // YAML path such as "spec.rules[0].match.pathPrefix"
  std::string message;

  /// "file:line:col: path: message", the format `tether validate` prints.
  std::string format() const;
};

using ConfigErrors = std::vector<ConfigError>;

/// Returns the candidate closest to `word` when it is a plausible typo of it, else "".
std::string didYouMean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace tether::config
