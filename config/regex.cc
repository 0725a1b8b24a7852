#include "config/regex.h"

#include <re2/re2.h>

namespace tether::config {

std::shared_ptr<const Regex> Regex::compile(const std::string& pattern, std::string& error) {
  RE2::Options options;
  options.set_log_errors(false);
  // Bounds the memory of the compiled program and of its DFA cache (RE2 falls back to the
  // slower NFA, still linear, when the cache is full).
  options.set_max_mem(1 << 20);
  auto re = std::make_unique<re2::RE2>(pattern, options);
  if (!re->ok()) {
    error = re->error();
    return nullptr;
  }
  if (re->ProgramSize() > kMaxProgramSize) {
    error = "program size " + std::to_string(re->ProgramSize()) + " is over the limit of " +
            std::to_string(kMaxProgramSize) + "; simplify the pattern";
    return nullptr;
  }
  std::shared_ptr<Regex> out(new Regex());
  out->pattern_ = pattern;
  out->re_ = std::move(re);
  return out;
}

Regex::~Regex() = default;

bool Regex::fullMatch(std::string_view text) const {
  return re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *re_);
}

}  // namespace tether::config
