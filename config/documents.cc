#include "config/documents.h"

#include <yaml-cpp/yaml.h>

#include <sstream>

namespace tether::config {

namespace {

bool isSeparator(const std::string& line) {
  if (line.compare(0, 3, "---") != 0) return false;
  for (size_t i = 3; i < line.size(); ++i) {
    if (line[i] == '#') return true;
    if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') return false;
  }
  return true;
}

bool blank(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t i = line.find_first_not_of(" \t\r");
    if (i != std::string::npos && line[i] != '#') return false;
  }
  return true;
}

void describe(RuleDocumentText& d) {
  try {
    YAML::Node n = YAML::Load(d.text);
    if (!n.IsMap()) return;
    if (n["kind"] && n["kind"].IsScalar()) d.kind = n["kind"].Scalar();
    if (n["metadata"].IsMap() && n["metadata"]["name"] && n["metadata"]["name"].IsScalar()) {
      d.name = n["metadata"]["name"].Scalar();
    }
    const YAML::Node sel = n["selector"];
    if (!sel.IsMap()) return;
    if (sel["service"] && sel["service"].IsScalar()) d.selectorService = sel["service"].Scalar();
    if (sel["labels"].IsMap()) {
      for (const auto& kv : sel["labels"]) {
        if (kv.first.IsScalar() && kv.second.IsScalar()) {
          d.selectorLabels[kv.first.Scalar()] = kv.second.Scalar();
        }
      }
    }
  } catch (const YAML::Exception&) {
    // Served as it is: the sidecar's loader reports the error with its position.
  }
}

}  // namespace

bool RuleDocumentText::selects(const std::string& service, const Labels& labels) const {
  if (selectorService && *selectorService != service) return false;
  for (const auto& [k, v] : selectorLabels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::vector<RuleDocumentText> splitRuleDocuments(const std::string& file, const std::string& text) {
  std::vector<RuleDocumentText> out;
  std::istringstream in(text);
  std::string line, current;
  int index = 0;
  auto finish = [&] {
    if (!blank(current)) {
      RuleDocumentText d;
      d.source = file + "#" + std::to_string(++index);
      d.text = std::move(current);
      describe(d);
      out.push_back(std::move(d));
    }
    current.clear();
  };
  while (std::getline(in, line)) {
    if (isSeparator(line)) {
      finish();
      continue;
    }
    current += line;
    current += '\n';
  }
  finish();
  return out;
}

}  // namespace tether::config
