#include "run/experiment.h"

#include <climits>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "io/yaml_options.h"
#include "policies/policy.h"
#include "sampling/scheduler.h"

namespace profdit::run {

namespace {

std::string line_of(const std::string& path, const YAML::Node& n) {
    return n && n.Mark().line >= 0 ? path + ":" + std::to_string(n.Mark().line + 1) : path;
}

// a.b.c=v: walks maps by key and lists by index; the value is YAML (numbers, lists, maps).
void apply_override(YAML::Node root, const std::string& path, const std::string& kv) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) input_error("--set '" + kv + "' is not of the form key=value (e.g. sampling.steps=20)");
    const std::string key = kv.substr(0, eq);
    YAML::Node        value;
    try {
        value = YAML::Load(kv.substr(eq + 1));
    } catch (const YAML::Exception& e) {
        input_error("--set '" + kv + "': value is not valid YAML (" + e.msg + ")");
    }
    std::vector<std::string> parts;
    for (size_t b = 0, e; b <= key.size(); b = e + 1) {
        e = key.find('.', b);
        if (e == std::string::npos) e = key.size();
        parts.push_back(key.substr(b, e - b));
    }
    YAML::Node node = root;
    for (size_t i = 0; i < parts.size(); ++i) {
        const bool last = i + 1 == parts.size();
        if (parts[i].empty()) input_error("--set '" + kv + "': empty key part");
        if (node.IsSequence()) {
            size_t idx = 0;
            try {
                idx = std::stoul(parts[i]);
            } catch (const std::exception&) {
                input_error("--set '" + kv + "': '" + parts[i] + "' indexes a list in " + path + ", use a number");
            }
            if (idx >= node.size())
                input_error("--set '" + kv + "': index " + parts[i] + " is past the end of a list of " + std::to_string(node.size()) +
                            " in " + path);
            if (last) {
                node[idx] = value;
                return;
            }
            YAML::Node next = node[idx];
            if (next.IsScalar()) {  // a policy given by name gains options: none -> {name: none}
                YAML::Node m;
                m["name"] = next.Scalar();
                node[idx] = m;
                next      = node[idx];
            }
            node.reset(next);
        } else {
            if (!node.IsMap() && !node.IsNull()) input_error("--set '" + kv + "': '" + parts[i] + "' is not inside a map in " + path);
            if (last) {
                node[parts[i]] = value;
                return;
            }
            if (!node[parts[i]]) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
            YAML::Node next = node[parts[i]];
            node.reset(next);
        }
    }
}

std::string emit(const YAML::Node& n) {
    YAML::Emitter e;
    e << n;
    return std::string(e.c_str()) + "\n";
}

std::vector<std::string> read_prompts_file(const std::string& file, const std::string& where) {
    std::ifstream in(file);
    if (!in) input_error(where + ": prompts_file '" + file + "' cannot be read");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty() && line[0] != '#') out.push_back(line);
    }
    if (out.empty()) input_error(where + ": prompts_file '" + file + "' holds no prompts");
    return out;
}

ModelSpec parse_model(io::Options& root, const std::string& path) {
    const YAML::Node n = root.get_node("model");
    if (!n) root.fail("model", "is required, e.g. model: {preset: sprites-tiny}");
    io::Options o(n, "model", path);
    ModelSpec   m;
    m.preset     = o.get_string("preset", "");
    m.dir        = o.get_string("dir", "");
    m.checkpoint = o.get_string("checkpoint", "");
    m.config     = o.get_string("config", "");
    m.init       = o.has("init") ? o.get_choice("init", "random", {"random"}) : "";
    m.seed       = uint64_t(o.get_int("seed", 0, 0, INT_MAX));
    m.device     = o.get_string("device", "cpu");
    m.dtype      = o.get_choice("dtype", "fp32", {"fp32", "bf16"});
    m.threads    = o.get_int("threads", 0, 0, 1024);
    const bool sized = o.has("frames") || o.has("height") || o.has("width");
    m.frames     = o.get_int("frames", 81, 1, 100000);
    m.height     = o.get_int("height", 480, 1, 100000);
    m.width      = o.get_int("width", 832, 1, 100000);
    if (int(!m.preset.empty()) + int(!m.dir.empty()) + int(!m.checkpoint.empty()) + int(!m.config.empty()) != 1)
        root.fail("model", "needs exactly one of preset, dir, checkpoint, config");
    if (!m.config.empty() && m.init != "random")
        o.fail("config", "'" + m.config + "' gives only the shapes: add init: random for seeded random weights (or use checkpoint: FOLDER)");
    if (m.config.empty() && !m.init.empty()) o.fail("init", "random needs config: (wan2.1-t2v-1.3b, wan2.1-t2v-14b or a JSON file)");
    if (m.config.empty() && o.has("seed")) o.fail("seed", "seeds random weights and needs config: with init: random");
    if (!m.is_wan() && sized)
        o.fail(o.has("frames") ? "frames" : o.has("height") ? "height" : "width",
               "sets a Wan model's video size; a world model (preset, dir) has its own");
    if (m.is_wan()) {
        if (m.frames % 4 != 1) o.fail("frames", std::to_string(m.frames) + " is not 4n+1 (1, 5, ..., 17, ..., 81): the VAE's temporal stride is 4");
        if (m.height % 16) o.fail("height", std::to_string(m.height) + " is not a multiple of 16 (VAE stride 8 times the DiT's patch 2), e.g. 480");
        if (m.width % 16) o.fail("width", std::to_string(m.width) + " is not a multiple of 16 (VAE stride 8 times the DiT's patch 2), e.g. 832");
    }
    o.finish();
    return m;
}

std::vector<MetricSpec> parse_metrics(const YAML::Node& n, const std::string& path) {
    std::vector<MetricSpec> out;
    if (!n) return {{"psnr", ""}, {"ssim", ""}, {"lpips_proxy", ""}};
    if (!n.IsSequence()) input_error(line_of(path, n) + ": metrics must be a list, e.g. [psnr, ssim, lpips_proxy]");
    auto known = [&](const std::string& name, const YAML::Node& at) {
        for (const auto& k : metric_names())
            if (k == name) return;
        std::string acc;
        for (const auto& k : metric_names()) acc += (acc.empty() ? "" : ", ") + k;
        input_error(line_of(path, at) + ": metrics: unknown metric '" + name + "' (accepted: " + acc + ")");
    };
    for (const auto& e : n) {
        MetricSpec m;
        if (e.IsScalar()) {
            m.name = e.Scalar();
        } else if (e.IsMap() && e.size() == 1) {
            m.name = io::key_name(e.begin()->first, line_of(path, e) + ": metrics");
            io::Options o(e.begin()->second, "metric " + m.name, path);
            if (m.name == "lpips") m.weights = o.get_string("weights", ""), m.spatial = o.get_bool("spatial", true);
            o.finish();
        } else {
            input_error(line_of(path, e) + ": metrics: each entry is a name or {name: {options}}");
        }
        known(m.name, e);
        if (m.name == "lpips" && m.weights.empty())
            input_error(line_of(path, e) + ": metrics: lpips needs its weights: {lpips: {weights: FILE.safetensors}} "
                                           "(AlexNet trunk + v0.1 linear layers); lpips_proxy needs none");
        out.push_back(m);
    }
    return out;
}

CalibrationSpec parse_calibration(const YAML::Node& n, const std::vector<std::string>& prompts, const std::string& path) {
    CalibrationSpec c;
    if (!n) return c;
    io::Options o(n, "calibration", path);
    const YAML::Node ps = o.get_node("prompts");
    if (!ps || !ps.IsSequence() || ps.size() == 0) o.fail("prompts", "must be a non-empty list of strings (captions apart from the evaluation prompts)");
    for (const auto& p : ps) {
        if (!p.IsScalar()) input_error(line_of(path, p) + ": calibration: prompts: each prompt is a string");
        for (size_t i = 0; i < prompts.size(); ++i)
            if (prompts[i] == p.Scalar())
                input_error(line_of(path, p) + ": calibration: prompts: '" + p.Scalar() + "' is also evaluation prompt " + std::to_string(i) +
                            ": a budget matched on the pairs it is judged on is not a fair comparison");
        c.prompts.push_back(p.Scalar());
    }
    for (int sd : o.get_int_list("seeds", 0, INT_MAX)) c.seeds.push_back(uint64_t(sd));
    if (c.seeds.empty()) o.fail("seeds", "must be a non-empty list of integers, e.g. seeds: [100]");
    c.tolerance = o.get_double("tolerance", 0.02, 1e-4, 0.5);
    o.finish();
    return c;
}

}  // namespace

const std::vector<std::string>& metric_names() {
    static const std::vector<std::string> n = {"psnr", "ssim", "ms_ssim", "lpips_proxy", "lpips", "region", "flicker"};
    return n;
}

constexpr size_t kMaxGridPoints = 1000;  // per policy entry: a typo in a list must not build millions of runs

std::vector<YAML::Node> expand_policy(const YAML::Node& node, const std::string& source) {
    if (!node.IsMap()) return {YAML::Clone(node)};
    const std::string name = node["name"] && node["name"].IsScalar() ? node["name"].Scalar() : "";
    std::vector<YAML::Node> grid = {YAML::Node(YAML::NodeType::Map)};
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string key = io::key_name(it->first, source + ": policy " + name);
        const YAML::Node  v   = it->second;
        const bool expands = v.IsSequence() && (!policies::option_is_list(name, key) || (v.size() > 0 && v[0].IsSequence()));
        if (expands && v.size() == 0) input_error(source + ": policy " + name + ": option '" + key + "' is an empty list");
        if (expands && grid.size() * v.size() > kMaxGridPoints)
            input_error(source + ": policy " + name + ": the grid reaches more than " + std::to_string(kMaxGridPoints) +
                        " settings at option '" + key + "' (" + std::to_string(grid.size()) + " x " + std::to_string(v.size()) +
                        "); split the sweep");
        std::vector<YAML::Node> next;
        for (const auto& g : grid) {
            if (!expands) {
                auto c = YAML::Clone(g);
                c[key] = YAML::Clone(v);
                next.push_back(c);
                continue;
            }
            for (const auto& e : v) {
                auto c = YAML::Clone(g);
                c[key] = YAML::Clone(e);
                next.push_back(c);
            }
        }
        grid = std::move(next);
    }
    return grid;
}

Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
    YAML::Node root = io::load_yaml_file(path, "experiment file", "(name, model, sampling, prompts, seeds, policies, ...)");
    for (const auto& kv : overrides) apply_override(root, path, kv);

    Experiment x;
    x.path = path;
    x.yaml = emit(root);
    io::Options o(root, "experiment", path);
    x.name  = o.get_string("name", std::filesystem::path(path).stem().string());
    x.model = parse_model(o, path);

    io::Options s(o.get_node("sampling"), "sampling", path);
    x.sampling.solver = s.get_choice("solver", "unipc", {"unipc", "dpm++", "euler"});
    x.sampling.steps  = s.get_int("steps", 50, 1, 1000);
    x.sampling.shift  = s.get_double("shift", 5.0, 1e-3, 1e3);
    x.sampling.guide  = s.get_double("guide", 5.0, 0.0, 100.0);
    x.sampling.keep_steps = false;
    s.finish();

    const YAML::Node prompts = o.get_node("prompts");
    const std::string pfile  = o.get_string("prompts_file", "");
    if (bool(prompts) == !pfile.empty()) o.fail("prompts", "give exactly one of prompts (a list) and prompts_file");
    if (prompts) {
        if (!prompts.IsSequence() || prompts.size() == 0) o.fail("prompts", "must be a non-empty list of strings");
        for (const auto& p : prompts) {
            if (!p.IsScalar()) input_error(line_of(path, p) + ": prompts: each prompt is a string");
            x.prompts.push_back(p.Scalar());
        }
    } else {
        // like every path in an experiment: relative to the working directory (docs/experiments.md)
        x.prompts = read_prompts_file(pfile, line_of(path, root["prompts_file"]));
    }

    for (int sd : o.get_int_list("seeds", 0, INT_MAX)) x.seeds.push_back(uint64_t(sd));
    if (x.seeds.empty()) o.fail("seeds", "must be a non-empty list of integers, e.g. seeds: [0, 1]");

    x.calibration = parse_calibration(o.get_node("calibration"), x.prompts, path);
    const YAML::Node pol = o.get_node("policies");
    if (!pol || !pol.IsSequence() || pol.size() == 0) o.fail("policies", "must be a non-empty list, e.g. [none, {name: teacache, threshold: [0.05, 0.1]}]");
    for (const auto& p : pol) {
        for (auto& n : expand_policy(p, line_of(path, p))) {
            const std::string source = line_of(path, p);
            auto target = take_budget_target(n, x.calibration.tolerance, source);
            if (target && x.calibration.prompts.empty())
                input_error(source + ": policy " + n["name"].Scalar() + ": target_" + target->kind +
                            " is matched on calibration pairs: add calibration: {prompts: [...], seeds: [...]} (prompts apart from the evaluation prompts)");
            x.policies.push_back({n, source, target});
        }
    }

    x.metrics = parse_metrics(o.get_node("metrics"), path);

    io::Options t(o.get_node("timing"), "timing", path);
    x.warmup_runs = t.get_int("warmup_runs", 1, 0, 100);
    x.repeats     = t.get_int("repeats", 3, 1, 100);
    t.finish();

    io::Options pr(o.get_node("profile"), "profile", path);
    x.profile.similarity    = pr.get_bool("similarity", true);
    x.profile.attention     = pr.get_bool("attention", false);
    x.profile.mask          = pr.get_choice("mask", "gt", {"gt", "auto", "file"});
    x.profile.mask_file     = pr.get_string("mask_file", "");
    if ((x.profile.mask == "file") != !x.profile.mask_file.empty())
        pr.fail(x.profile.mask == "file" ? "mask" : "mask_file", "mask: file needs mask_file: PATH (and mask_file needs mask: file)");
    x.profile.high          = pr.get_choice("high", "mean", {"mean", "quantile"});
    x.profile.high_value    = pr.get_double("high_value", x.profile.high == "mean" ? 1.0 : 0.8, 0.0, x.profile.high == "mean" ? 1e6 : 1.0);
    x.profile.query_chunk   = pr.get_int("query_chunk", 64, 1, 1 << 20);
    x.profile.query_stride  = pr.get_int("query_stride", 1, 1, 1 << 20);
    x.profile.keep_received = pr.get_bool("keep_received", false);
    pr.finish();

    x.video  = o.get_bool("video", false);
    x.output = o.get_string("output", "out/" + x.name + ".h5");
    o.finish();
    (void)sampling::make_scheduler(x.sampling.solver, x.sampling.steps, x.sampling.shift);
    return x;
}

}  // namespace profdit::run
