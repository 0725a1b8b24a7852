#pragma once
// The tether executable's commands, one entry point each (argv as main got it: argv[1] is
// the command). Each returns the process exit code: 0, 1 for a failure, 2 for bad usage.

#include <string>

namespace tether::cli {

int run(int argc, char** argv);
int validate(int argc, char** argv);
int sign(int argc, char** argv);
int inject(int argc, char** argv);
int controlPlane(int argc, char** argv);
int status(int argc, char** argv);

/// The usage text, printed on bad usage and by `tether help`.
extern const char* const kUsage;

}  // namespace tether::cli
