#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace tether::config {

/// A regular expression from configuration, in RE2 syntax: matching runs in time linear in
/// the input and never recurses, whatever the pattern or the input (std::regex does both,
/// so one request could overflow the stack or stall a worker). Compiled once per snapshot;
/// const, so workers share it.
class Regex {
 public:
  /// Compiled programs larger than this (RE2's ProgramSize(), roughly the instruction count)
  /// are refused, as Envoy refuses them past its max_program_size.
  static constexpr int kMaxProgramSize = 1000;

  /// The compiled pattern, or nullptr with `error` set.
  static std::shared_ptr<const Regex> compile(const std::string& pattern, std::string& error);
  ~Regex();

  /// Whether the whole of `text` matches.
  bool fullMatch(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  std::string pattern_;
  std::unique_ptr<re2::RE2> re_;
};

}  // namespace tether::config
