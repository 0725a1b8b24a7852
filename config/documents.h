#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/rules.h"

namespace tether::config {

/// One document of a rules file, as the reference control plane serves it: verbatim, so
/// that a sidecar's errors point at the document's own lines.
struct RuleDocumentText {
  std::string source;  // "<file>#<n>" (n from 1): how errors and NACKs name it
  std::string text;
  std::string kind;  // empty when the document does not parse (the sidecar will say why)
  std::string name;
  /// The document's `selector`: which nodes get it (none: every node).
  std::optional<std::string> selectorService;
  Labels selectorLabels;

  /// Whether a node with `service` and `labels` gets this document.
  bool selects(const std::string& service, const Labels& labels) const;
};

/// Splits `text` (the content of `file`) at its "---" lines, dropping empty documents.
std::vector<RuleDocumentText> splitRuleDocuments(const std::string& file, const std::string& text);

}  // namespace tether::config
