// The tether executable: picks the command and hands over to it (proxy/cli/commands.h).

#include <cstdio>
#include <cstring>
#include <string_view>

#include "proxy/cli/commands.h"

namespace tether::cli {

const char* const kUsage =
    "usage:\n"
    "  tether run [-c tether.yaml] [--log-level debug|info|warn|error]\n"
    "      run the proxy; without -c: the embedded default (admin 127.0.0.1:15000,\n"
    "      outbound 127.0.0.1:15001, inbound 0.0.0.0:15006 -> local app 127.0.0.1:8080)\n"
    "  tether validate -c tether.yaml [rules.yaml ...]\n"
    "      check a configuration; prints file:line:col: path: message per error\n"
    "  tether sign --key-id ID --secret-file FILE [-X METHOD] [-H 'name: value']...\n"
    "              [--signed-header NAME]... [-d DATA | --data-file FILE | --unsigned-payload]\n"
    "              [--host HOST] [--date YYYYMMDDTHHMMSSZ] [--nonce N] [--canonical] URL\n"
    "      print the TETHER-HMAC-SHA256 headers that sign a request (one 'name: value'\n"
    "      per line), e.g. for curl; the -H headers are signed too. --canonical also\n"
    "      prints the canonical request and the string to sign on stderr\n"
    "  tether inject -f FILE|- [-f FILE]... [--image IMAGE] [--config-map NAME]\n"
    "                [--proxy-uid UID] [--drain-timeout SECONDS] [--admin-port PORT]\n"
    "                [--exclude-inbound-ports L] [--exclude-outbound-ports L]\n"
    "      print the Kubernetes YAML with the Tether sidecar added to every pod template\n"
    "      (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, List);\n"
    "      injecting twice changes nothing\n"
    "  tether control-plane --rules DIR [--listen ADDR] [--admin ADDR]\n"
    "                       [--instance-grace DURATION]\n"
    "      the reference control plane: serves the rule documents in DIR (watched) to\n"
    "      every connected sidecar and keeps the registry of instances\n"
    "      (defaults: --listen 127.0.0.1:15010 --admin 127.0.0.1:15011 --instance-grace 10s)\n"
    "  tether status [--control-plane ADMIN_ADDR] [--json]\n"
    "      every sidecar connected to the control plane: acked version, sync state, last\n"
    "      NACK and its reasons (default 127.0.0.1:15011, the control plane's admin port)\n"
    "  tether version\n";

}  // namespace tether::cli

int main(int argc, char** argv) {
  namespace cli = tether::cli;
  struct Command {
    const char* name;
    int (*run)(int, char**);
  };
  static constexpr Command kCommands[] = {
      {"run", cli::run},       {"validate", cli::validate},          {"sign", cli::sign},
      {"inject", cli::inject}, {"control-plane", cli::controlPlane}, {"status", cli::status},
  };
  if (argc < 2) {
    std::fputs(cli::kUsage, stderr);
    return 2;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) == 0) return c.run(argc, argv);
  }
  std::string_view command = argv[1];
  if (command == "version" || command == "--version") {
    std::printf("tether %s\n", TETHER_VERSION);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(cli::kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "tether: unknown command \"%s\"\n", argv[1]);
  std::fputs(cli::kUsage, stderr);
  return 2;
}
