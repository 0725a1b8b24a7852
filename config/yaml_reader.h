#pragma once
// Internal to config/: the only header that includes yaml-cpp.

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "config/address.h"
#include "config/bootstrap.h"
#include "config/duration.h"
#include "config/error.h"

namespace tether::config::detail {

/// Collects errors for one source file.
class ErrorSink {
 public:
  ErrorSink(std::string file, ConfigErrors& errors) : file_(std::move(file)), errors_(errors) {}

  void add(const YAML::Node& at, const std::string& path, const std::string& message);
  void addAt(int line, int column, const std::string& path, const std::string& message);
  const std::string& file() const { return file_; }
  size_t count() const { return errors_.size(); }

 private:
  std::string file_;
  ConfigErrors& errors_;
};

/// Reads a YAML mapping whose keys must all be known. Every key looked up through get() is
/// known; finish() reports the rest as unknown, with a did-you-mean hint.
class MapReader {
 public:
  MapReader(ErrorSink& sink, const YAML::Node& node, std::string path);
  ~MapReader();

  bool ok() const { return ok_; }
  /// Returns the value under `key` (an undefined node when absent) and marks the key known.
  YAML::Node get(const std::string& key);
  /// Path of a child key, for nested readers and messages.
  std::string child(const std::string& key) const;
  const std::string& path() const { return path_; }

  /// Typed readers: leave `out` unchanged when the key is absent; report a type error and
  /// return false when present but wrong.
  bool readString(const std::string& key, std::string& out);
  bool readBool(const std::string& key, bool& out);
  bool readUint(const std::string& key, uint32_t& out, uint32_t min = 0, uint32_t max = UINT32_MAX);
  bool readDuration(const std::string& key, Duration& out);
  bool readAddress(const std::string& key, Address& out);
  bool readStringList(const std::string& key, std::vector<std::string>& out);
  bool readStringMap(const std::string& key, std::map<std::string, std::string>& out);
  /// Reads `key` as one of `choices`; returns the index, or -1 when absent or invalid.
  int readEnum(const std::string& key, std::initializer_list<const char*> choices);

  ErrorSink& sink() { return sink_; }
  /// Where the value under `key` sits (for errors found later, when a file it names is read).
  FieldPosition position(const std::string& key);
  /// Reports an error at this key's value (or at the map when the key is absent).
  void error(const std::string& key, const std::string& message);
  void required(const std::string& key);

 private:
  ErrorSink& sink_;
  YAML::Node node_;
  std::string path_;
  std::vector<std::string> known_;
  bool ok_ = true;
};

/// Scalar helpers usable on any node.
bool asString(ErrorSink& sink, const YAML::Node& n, const std::string& path, std::string& out);
bool asDuration(ErrorSink& sink, const YAML::Node& n, const std::string& path, Duration& out);

}  // namespace tether::config::detail
