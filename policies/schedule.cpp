#include "policies/schedule.h"

#include <cmath>

#include "common/error.h"
#include "policies/policy.h"

namespace profdit::policies {

std::vector<bool> RefreshSchedule::refresh_steps(int steps) const {
    std::vector<bool> r(steps, false);
    for (int s = 0; s < steps; ++s)
        if (s < warmup || s >= steps - final_full) r[s] = true;
    if (type == "fixed") {
        for (int s = warmup; s < steps; s += interval) r[s] = true;
    } else if (type == "linear") {
        for (int s = warmup; s < steps;) {
            r[s] = true;
            const double t = t_max - (t_max - t_min) * double(s - warmup) / double(std::max(1, steps - warmup));
            s += std::max(1, int(std::lround(t)));
        }
    } else {
        for (int s : refresh)
            if (s >= 0 && s < steps) r[s] = true;
    }
    return r;
}

std::string RefreshSchedule::tag() const {
    std::string t = "w" + std::to_string(warmup);
    if (type == "fixed") t += "-fixed" + std::to_string(interval);
    else if (type == "linear") t += "-linear" + tag_number(t_max) + "to" + tag_number(t_min);
    else {
        t += "-list";
        for (int s : refresh) t += "." + std::to_string(s);
    }
    if (final_full) t += "-f" + std::to_string(final_full);
    return t;
}

YAML::Node RefreshSchedule::to_yaml() const {
    YAML::Node n;
    n["type"] = type;
    if (type == "fixed") n["interval"] = interval;
    if (type == "linear") {
        n["t_max"] = t_max;
        n["t_min"] = t_min;
    }
    if (type == "list") n["refresh"] = refresh;
    return n;
}

RefreshSchedule RefreshSchedule::from_options(io::Options& opts, int default_warmup, int default_interval, int default_final) {
    RefreshSchedule r;
    r.warmup     = opts.get_int("warmup", default_warmup, 0, 100000);
    r.final_full = opts.get_int("final_full", default_final, 0, 100000);
    r.interval   = default_interval;
    YAML::Node s = opts.get_node("schedule");
    if (!s) return r;
    if (s.IsScalar()) {
        YAML::Node m;
        m["interval"] = s;
        io::Options one(m, opts.section(), opts.source());
        r.interval = one.get_int("interval", default_interval, 1, 100000);
        return r;
    }
    if (!s.IsMap()) opts.fail("schedule", "must be a map {type: fixed|linear|list, ...} or an integer interval");
    io::Options so(s, opts.section() + " schedule", opts.source());
    r.type = so.get_choice("type", "fixed", {"fixed", "linear", "list"});
    if (r.type == "fixed") {
        r.interval = so.get_int("interval", default_interval, 1, 100000);
    } else if (r.type == "linear") {
        r.t_max = so.get_double("t_max", 8.0, 1.0, 1e6);
        r.t_min = so.get_double("t_min", 2.0, 1.0, 1e6);
        if (r.t_min > r.t_max) so.fail("t_min", "must not exceed t_max (" + tag_number(r.t_max) + "), got " + tag_number(r.t_min));
    } else {
        if (!so.has("refresh")) so.fail("refresh", "is required for type: list");
        r.refresh = so.get_int_list("refresh", 0, 100000);
    }
    so.finish();
    return r;
}

}  // namespace profdit::policies
