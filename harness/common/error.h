#pragma once

#include <stdexcept>
#include <string>

namespace profdit {

// Bad input from the user (missing file, malformed data, unknown key, wrong shape, bad option).
// The CLI turns it into one line on stderr and exit code 2; anything else is a runtime failure (exit 1).
class InputError : public std::runtime_error {
  public:
    explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

[[noreturn]] inline void input_error(const std::string& what) { throw InputError(what); }

}  // namespace profdit
