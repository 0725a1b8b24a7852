#include <glob.h>
// SHA256_Init and co. are deprecated in OpenSSL 3 but still supported.
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "config/loader_internal.h"
#include "config/yaml_guard.h"
#include "config/yaml_reader.h"

namespace tether::config {

const char* toString(Direction d) { return d == Direction::kInbound ? "inbound" : "outbound"; }

const ServiceConfig* Config::findService(const std::string& name) const {
  auto it = services.find(name);
  return it == services.end() ? nullptr : &it->second;
}

std::string sha256Hex(std::string_view data) {
  // The low-level API: EVP would initialize OpenSSL's providers and configuration, which a
  // Tether without TLS never needs (3 MB of libcrypto paged in at start).
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, data.data(), data.size());
  SHA256_Final(digest, &c);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(digest));
  for (unsigned i = 0; i < sizeof(digest); ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

namespace {

std::string tooLarge(size_t bytes) {
  return "the configuration is " + std::to_string(bytes) + " bytes; the limit is " +
         std::to_string(kMaxConfigBytes / (1024 * 1024)) + " MiB";
}

}  // namespace

bool readFile(const std::string& path, std::string& out, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  int fd = path == "-" ? ::dup(STDIN_FILENO) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    int err = errno;
    ::close(fd);
    return fail(S_ISDIR(st.st_mode) ? "is a directory" : std::strerror(err));
  }
  if (S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) > kMaxConfigBytes) {
    ::close(fd);
    return fail(tooLarge(static_cast<size_t>(st.st_size)));
  }
  std::string content;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return fail(std::strerror(err));
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > kMaxConfigBytes) {  // grew while read
      ::close(fd);
      return fail(tooLarge(content.size()));
    }
  }
  ::close(fd);
  out = std::move(content);
  return true;
}

ConfigError unreadable(const std::string& path, const std::string& why) {
  return ConfigError{path, 0, 0, "", "cannot read file: " + why};
}

std::vector<std::string> expandGlob(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  }
  globfree(&g);
  std::sort(out.begin(), out.end());
  return out;
}

LoadResult loadFromSources(const Source& bootstrapSource, const std::vector<Source>& ruleSources,
                           bool expandRuleFiles) {
  LoadResult result;
  auto cfg = std::make_shared<Config>();
  detail::RuleSet rules;
  {
    detail::ErrorSink sink(bootstrapSource.name, result.errors);
    std::vector<YAML::Node> inlineRules;
    if (bootstrapSource.content.size() > kMaxConfigBytes) {
      sink.addAt(0, 0, "", tooLarge(bootstrapSource.content.size()));
      return result;
    }
    // A bootstrap the guard refuses is not loaded; the rule files named on the command line
    // are still checked, so one run reports everything.
    if (checkYaml(bootstrapSource.name, bootstrapSource.content, result.errors)) {
      try {
        YAML::Node root = YAML::Load(bootstrapSource.content);
        if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
        detail::readBootstrap(sink, root, cfg->bootstrap, inlineRules);
        for (const auto& doc : inlineRules) detail::readRuleDocument(sink, doc, rules);
      } catch (const YAML::Exception& e) {
        sink.addAt(e.mark.line + 1, e.mark.column + 1, "", e.msg);
      }
    }
  }
  std::vector<Source> sources = ruleSources;
  if (expandRuleFiles) {
    for (const auto& pattern : cfg->bootstrap.rules.files) {
      for (const auto& file : expandGlob(pattern)) {
        Source s{file, {}};
        std::string why;
        if (!readFile(file, s.content, &why)) {
          result.errors.push_back(unreadable(file, why));
          result.unreadable = true;
          continue;
        }
        sources.push_back(std::move(s));
      }
    }
  }
  size_t total = bootstrapSource.content.size();
  for (const auto& src : sources) total += src.content.size();
  if (total > kMaxConfigBytes) {
    // Refused before parsing: every byte would become nodes, documents and copies.
    result.errors.push_back(ConfigError{
        bootstrapSource.name, 0, 0, "",
        tooLarge(total) + " (bootstrap and " + std::to_string(sources.size()) + " rule sources)"});
    return result;
  }
  for (const auto& src : sources) {
    if (checkYaml(src.name, src.content, result.errors)) {
      detail::readRuleSource(src, rules, result.errors);
    }
  }
  detail::finishConfig(*cfg, rules, result.errors);
  std::string all = bootstrapSource.content;
  for (const auto& d : cfg->documents) all += d.hash;
  cfg->hash = sha256Hex(all);
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

LoadResult loadFromFiles(const std::string& bootstrapPath,
                         const std::vector<std::string>& extraRuleFiles,
                         const std::vector<Source>& extraSources) {
  Source bootstrap{bootstrapPath, {}};
  std::string why;
  if (!readFile(bootstrapPath, bootstrap.content, &why)) {
    LoadResult r;
    r.errors.push_back(unreadable(bootstrapPath, why));
    r.unreadable = true;
    return r;
  }
  std::vector<Source> rules;
  ConfigErrors readErrors;
  for (const auto& f : extraRuleFiles) {
    Source s{f, {}};
    if (!readFile(f, s.content, &why)) {
      readErrors.push_back(unreadable(f, why));
      continue;
    }
    rules.push_back(std::move(s));
  }
  rules.insert(rules.end(), extraSources.begin(), extraSources.end());
  LoadResult r = loadFromSources(bootstrap, rules, true);
  if (!readErrors.empty()) {
    r.errors.insert(r.errors.begin(), readErrors.begin(), readErrors.end());
    r.config.reset();
    r.unreadable = true;
  }
  return r;
}

LoadResult loadEmbeddedDefault() {
  return loadFromSources(Source{"<embedded default>", embeddedDefaultYaml()}, {}, true);
}

}  // namespace tether::config
