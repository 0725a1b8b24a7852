#pragma once

#include <cstddef>
#include <string>

#include "config/error.h"

namespace tether::config {

/// Bounds on what one configuration may cost to load, checked before anything is built.
inline constexpr size_t kMaxConfigBytes = 64 * 1024 * 1024;  // all sources together
inline constexpr size_t kMaxYamlNodes = 4'000'000;           // per source, aliases expanded

/// A streaming pass over `content` (named `file` in messages) before it is loaded: reports
/// duplicate mapping keys at the second key, and refuses a source whose node count, with
/// every alias expanded, passes kMaxYamlNodes (an alias bomb grows exponentially from a few
/// lines), and refuses control characters YAML does not allow (a NUL sends yaml-cpp through
/// millions of empty events). Syntax errors are left to the loader, which reports them with
/// its own position. Returns false when it added an error.
bool checkYaml(const std::string& file, const std::string& content, ConfigErrors& errors);

}  // namespace tether::config
