#include "common/progress.h"

#include <unistd.h>

#include <algorithm>

namespace profdit {

ProgressLine::ProgressLine(std::ostream& out, bool terminal, Clock::duration interval)
    : out_(out), terminal_(terminal), interval_(interval) {}

bool ProgressLine::stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

std::string ProgressLine::bar(int step, int steps) {
    const size_t full = size_t(20 * step / std::max(steps, 1));
    return "[" + std::string(full, '#') + std::string(20 - full, '.') + "] " + std::to_string(step) + "/" + std::to_string(steps);
}

void ProgressLine::update(const std::string& text, bool done, Clock::time_point now) {
    if (terminal_) {
        out_ << "\r" << text << (done ? "\n" : "") << std::flush;
    } else if (fresh_ || done || now - last_ >= interval_) {
        out_ << text << "\n" << std::flush;
        last_ = now;
    }
    fresh_ = done;
}

}  // namespace profdit
