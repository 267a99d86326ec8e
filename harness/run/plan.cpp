#include "run/plan.h"

#include "common/error.h"

namespace profdit::run {

Shard Shard::parse(const std::string& text) {
    Shard      s;
    const auto slash = text.find('/');
    try {
        if (slash == std::string::npos) throw std::invalid_argument(text);
        size_t a = 0, b = 0;
        s.index  = std::stoi(text.substr(0, slash), &a);
        s.count  = std::stoi(text.substr(slash + 1), &b);
        if (a != slash || b != text.size() - slash - 1) throw std::invalid_argument(text);
    } catch (const std::exception&) {
        input_error("--shard '" + text + "' is not of the form K/N (e.g. 2/4)");
    }
    if (s.count < 1 || s.index < 1 || s.index > s.count) input_error("--shard '" + text + "': need 1 <= K <= N");
    return s;
}

std::string Shard::text() const { return count == 1 ? "" : std::to_string(index) + "/" + std::to_string(count); }

std::vector<Pair> grid_pairs(const Experiment& x) {
    std::vector<Pair> out;
    for (size_t p = 0; p < x.prompts.size(); ++p)
        for (uint64_t s : x.seeds) {
            Pair q;
            q.index     = out.size();
            q.prompt    = int(p);
            q.seed      = s;
            q.reference = "/references/" + std::to_string(p) + "_" + std::to_string(s);
            out.push_back(q);
        }
    return out;
}

std::string run_group(const std::string& policy_tag, const Pair& p) {
    return "/runs/" + policy_tag + "_p" + std::to_string(p.prompt) + "_s" + std::to_string(p.seed);
}

}  // namespace profdit::run
