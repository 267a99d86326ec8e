#include "policies/dbcache.h"

#include <algorithm>
#include <cmath>

namespace profdit::policies {

DBCachePolicy::DBCachePolicy(const ModelFacts& facts, std::string name, Options o)
    : blocks_(facts.num_blocks), name_(std::move(name)), o_(o) {}

std::string DBCachePolicy::tag() const {
    std::string t = name_ + "-thr" + tag_number(o_.threshold) + "-w" + std::to_string(o_.warmup);
    if (name_ == "dbcache") t = "dbcache-F" + std::to_string(o_.fn) + "B" + std::to_string(o_.bn) + t.substr(name_.size());
    if (o_.max_cached_steps >= 0) t += "-mc" + std::to_string(o_.max_cached_steps);
    if (o_.max_continuous_cached_steps >= 0) t += "-mcc" + std::to_string(o_.max_continuous_cached_steps);
    return t;
}

std::vector<Segment> DBCachePolicy::segments() const {
    std::vector<Segment> s = {{0, o_.fn - 1, false}, {o_.fn, blocks_ - o_.bn - 1, true}};
    if (o_.bn > 0) s.push_back({blocks_ - o_.bn, blocks_ - 1, false});
    return s;
}

void DBCachePolicy::reset() { state_[0] = state_[1] = BranchState(); }

CallPlan DBCachePolicy::plan(const CallInfo&) {
    CallPlan p;
    p.reuse.assign(segments().size(), false);
    p.probe_segment = 0;  // the Fn blocks run first; refine() decides the middle
    return p;
}

// cache-dit's CachedContextManager.can_cache, per branch (enable_separate_cfg, as for Wan).
bool DBCachePolicy::can_cache(const CallInfo& call, double rel_l1) {
    auto& st = state_[call.branch];
    if (call.step < o_.warmup) return false;
    if (o_.max_cached_steps >= 0 && st.cached >= o_.max_cached_steps) return false;
    if (o_.max_continuous_cached_steps >= 0 && st.continuous >= o_.max_continuous_cached_steps) {
        st.continuous = 0;
        return false;
    }
    if (o_.threshold <= 0 || std::isnan(rel_l1)) return false;  // no reference yet: compute
    if (o_.threshold >= 1) return true;                          // cache-dit: >= 1 means always similar
    return rel_l1 < o_.threshold;
}

void DBCachePolicy::refine(const CallInfo& call, double rel_l1, CallPlan& plan) {
    if (!can_cache(call, rel_l1)) return;
    auto& st = state_[call.branch];  // cache-dit's add_cached_step
    if (st.cached > 0) {
        if (call.step - st.last_cached == 1) st.continuous += st.continuous == 0 ? 2 : 1;
    } else {
        st.continuous += 1;
    }
    st.cached += 1;
    st.last_cached = call.step;
    plan.reuse[1]  = true;
}

YAML::Node DBCachePolicy::params() const {
    YAML::Node n;
    if (name_ == "dbcache") {
        n["fn"] = o_.fn;
        n["bn"] = o_.bn;
    }
    n["threshold"] = o_.threshold;
    n["warmup"]    = o_.warmup;
    if (name_ == "dbcache") {
        n["max_cached_steps"]            = o_.max_cached_steps;
        n["max_continuous_cached_steps"] = o_.max_continuous_cached_steps;
    }
    return n;
}

namespace {

void check_blocks(io::Options& opts, const DBCachePolicy::Options& o, int blocks) {
    if (o.fn + o.bn >= blocks)
        opts.fail(o.bn > 0 ? "bn" : "fn", "leaves no middle block to cache: fn " + std::to_string(o.fn) + " + bn " +
                                              std::to_string(o.bn) + " must be below the model's " + std::to_string(blocks) + " blocks");
}

}  // namespace

std::unique_ptr<CachePolicy> make_dbcache(io::Options& opts, const ModelFacts& facts) {
    DBCachePolicy::Options o;  // cache-dit's BasicCacheConfig defaults (F8B0, 0.08, 8 warm-up steps, no caps)
    o.bn        = opts.get_int("bn", 0, 0, 100000);
    // Fn 8 leaves no middle block on models of <= 8 blocks: there the default is every block but one (and bn).
    o.fn        = opts.get_int("fn", std::max(1, std::min(8, facts.num_blocks - 1 - o.bn)), 1, 100000);
    o.threshold = opts.get_double("threshold", 0.08, 0.0, 1e9);
    o.warmup    = opts.get_int("warmup", 8, 0, 100000);
    o.max_cached_steps            = opts.get_int("max_cached_steps", -1, -1, 100000);
    o.max_continuous_cached_steps = opts.get_int("max_continuous_cached_steps", -1, -1, 100000);
    check_blocks(opts, o, facts.num_blocks);
    opts.finish();
    return std::make_unique<DBCachePolicy>(facts, "dbcache", o);
}

std::unique_ptr<CachePolicy> make_fbcache(io::Options& opts, const ModelFacts& facts) {
    DBCachePolicy::Options o;  // diffusers' FirstBlockCacheConfig threshold 0.05; ParaAttention warmup_steps 0
    o.fn        = 1;
    o.bn        = 0;
    o.threshold = opts.get_double("threshold", 0.05, 0.0, 1e9);
    o.warmup    = opts.get_int("warmup", 0, 0, 100000);
    check_blocks(opts, o, facts.num_blocks);
    opts.finish();
    return std::make_unique<DBCachePolicy>(facts, "fbcache", o);
}

}  // namespace profdit::policies
