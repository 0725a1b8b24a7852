#include "config/yaml_guard.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <cstdio>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tether::config {

namespace {

struct TooLarge {
  YAML::Mark mark;
};
struct NoProgress {
  YAML::Mark mark;
};

/// Walks parser events keeping one frame per open collection: enough to name a path, find a
/// duplicate key and count the nodes an alias stands for.
class Guard : public YAML::EventHandler {
 public:
  Guard(const std::string& file, ConfigErrors& errors) : file_(file), errors_(errors) {}

  bool failed() const { return failed_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    // yaml-cpp 0.7 can start empty documents at one place without end (a stray "," first
    // does it): a document that starts where the last one did is refused.
    if (documents_++ > 0 && mark.pos == lastDocumentPos_) throw NoProgress{mark};
    lastDocumentPos_ = mark.pos;
    frames_.clear();
    anchors_.clear();
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    node(mark, nullptr);
    leaf(mark, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    node(mark, nullptr);
    auto it = anchors_.find(anchor);
    add(mark, it == anchors_.end() ? 1 : it->second);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    node(mark, &value);
    leaf(mark, anchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, false);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, true);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    bool map;
    YAML::anchor_t anchor;
    size_t countAtStart;
    bool expectKey = true;  // maps: the next node is a key
    size_t index = 0;       // sequences: the next item's index
    std::string key;        // maps: the key of the value being read
    std::unordered_map<std::string, YAML::Mark> keys;
  };

  /// A node starts (`scalar`: its value, when it is a scalar): as a key, checks it is new.
  void node(const YAML::Mark& mark, const std::string* scalar) {
    if (frames_.empty()) return;
    Frame& f = frames_.back();
    if (!f.map) {
      f.index++;
      return;
    }
    if (!f.expectKey) {
      f.expectKey = true;
      return;
    }
    f.expectKey = false;
    f.key = scalar ? *scalar : "?";
    if (!scalar) return;
    auto [it, inserted] = f.keys.emplace(*scalar, mark);
    if (!inserted) {
      error(mark, path(true),
            "duplicate key \"" + *scalar + "\" (first at line " +
                std::to_string(it->second.line + 1) + ", column " +
                std::to_string(it->second.column + 1) + ")");
    }
  }

  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
    add(mark, 1);
    if (anchor) anchors_[anchor] = 1;
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, bool map) {
    node(mark, nullptr);
    add(mark, 1);
    frames_.push_back(Frame{map, anchor, nodes_ - 1});
  }

  void close() {
    if (frames_.empty()) return;
    Frame& f = frames_.back();
    if (f.anchor) anchors_[f.anchor] = nodes_ - f.countAtStart;
    frames_.pop_back();
  }

  void add(const YAML::Mark& mark, size_t n) {
    nodes_ += n;
    if (nodes_ > kMaxYamlNodes) throw TooLarge{mark};
  }

  /// "spec.rules[0].match" for the node being read (`key`: up to the key itself).
  std::string path(bool key) const {
    std::string p;
    for (size_t i = 0; i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      bool last = i + 1 == frames_.size();
      if (f.map) {
        if (last && !key) break;
        if (!p.empty()) p += '.';
        p += f.key;
      } else {
        p += "[" + std::to_string(f.index == 0 ? 0 : f.index - 1) + "]";
      }
    }
    return p;
  }

 public:
  void error(const YAML::Mark& mark, const std::string& path, const std::string& message) {
    failed_ = true;
    errors_.push_back(ConfigError{file_, mark.line + 1, mark.column + 1, path, message});
  }

 private:
  const std::string& file_;
  ConfigErrors& errors_;
  std::vector<Frame> frames_;
  std::unordered_map<YAML::anchor_t, size_t> anchors_;  // expanded node count of each anchor
  size_t nodes_ = 0;
  size_t documents_ = 0;
  int lastDocumentPos_ = -1;
  bool failed_ = false;
};

}  // namespace

bool checkYaml(const std::string& file, const std::string& content, ConfigErrors& errors) {
  // YAML's printable set (1.2 §5.1) leaves out C0 controls but tab, LF and CR, and DEL.
  int line = 1;
  int column = 1;
  for (unsigned char c : content) {
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02X", c);
      errors.push_back(
          ConfigError{file, line, column, "",
                      std::string("control character ") + hex + " is not allowed in YAML"});
      return false;
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  std::istringstream in(content);
  Guard guard(file, errors);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(guard)) {
    }
  } catch (const TooLarge& e) {
    guard.error(e.mark, "",
                "more than " + std::to_string(kMaxYamlNodes) +
                    " YAML nodes (aliases counted as what they expand to): refused");
  } catch (const NoProgress& e) {
    guard.error(e.mark, "", "the YAML parser makes no progress here (a stray character?): refused");
  } catch (const YAML::Exception&) {
    // A syntax error: the loader reports it.
  }
  return !guard.failed();
}

}  // namespace tether::config
