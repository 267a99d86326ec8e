#pragma once

#include <chrono>
#include <ostream>
#include <string>

namespace profdit {

// A progress line. On a terminal every update redraws it in place ("\r"). Anywhere else (a log file, CI)
// updates become whole lines, and only some of them: the first of each task, then at most one every
// `interval`, and the last (done), so a long run logs a few lines per task instead of a bar per step.
class ProgressLine {
  public:
    using Clock = std::chrono::steady_clock;

    // `terminal`: whether `out` is a terminal; ProgressLine::stderr_is_terminal() for std::cerr.
    ProgressLine(std::ostream& out, bool terminal, Clock::duration interval = std::chrono::seconds(5));

    // `text` without line ends; `done` ends the task's line. `now` is for tests.
    void update(const std::string& text, bool done, Clock::time_point now = Clock::now());

    static bool        stderr_is_terminal();
    static std::string bar(int step, int steps);  // "[#####...............] 5/20"

  private:
    std::ostream&     out_;
    bool              terminal_;
    Clock::duration   interval_;
    bool              fresh_ = true;  // the next update starts a task
    Clock::time_point last_;
};

}  // namespace profdit
