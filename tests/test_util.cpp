#include "test_util.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "io/json_file.h"
#include "wan/checkpoint.h"

namespace profdit::test {

namespace fs = std::filesystem;

std::string data_path(const std::string& rel) { return std::string(PROFDIT_TEST_DATA) + "/" + rel; }

int64_t shipped_model_blocks() {
    return io::read_json_file(data_path("../../data/models/sprites-tiny/config.json")).at("dit").at("num_layers").get<int64_t>();
}

std::string temp_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    fs::path    dir  = fs::temp_directory_path() / ("profdit-test-" + std::to_string(::getpid())) /
                   (std::string(info->test_suite_name()) + "." + info->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir.string();
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
    EXPECT_EQ(a.sizes(), b.sizes());
    if (a.sizes() != b.sizes()) return 1e30;
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

wan::WanModel tiny_model() {
    return wan::load_dit(data_path("wan21_tiny/dit_tiny_weights.safetensors"),
                         wan::WanConfig::from_json_file(data_path("wan21_tiny/config.json")), torch::kCPU);
}

sampling::SampleResult sample_cfg(sampling::Denoiser& d, wan::WanModelImpl& model, const torch::Tensor& noise,
                                  const torch::Tensor& context_cond, const torch::Tensor& context_uncond,
                                  const sampling::SampleOptions& opt) {
    const auto dev = model.device();
    return sampling::sample_cfg(d, noise, model.condition(context_cond.to(dev), noise.sizes()),
                                model.condition(context_uncond.to(dev), noise.sizes()), opt);
}

static std::string slurp(const std::string& path) {
    std::ifstream     f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string python_with(const std::string& modules) {
    std::vector<std::string> candidates = {"/usr/bin/python3", "python3"};
    if (const char* v = std::getenv("PROFDIT_PYTHON"); v && *v) candidates.insert(candidates.begin(), v);
    for (const auto& py : candidates)
        if (std::system((py + " -c 'import " + modules + "' >/dev/null 2>&1").c_str()) == 0) return py;
    return "";
}

CommandResult run_command(const std::string& command) {
    static int  n   = 0;
    const auto  dir = fs::temp_directory_path() / ("profdit-cmd-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const auto out = (dir / ("out" + std::to_string(n))).string();
    const auto err = (dir / ("err" + std::to_string(n++))).string();
    const std::string cmd = command + " >" + out + " 2>" + err;
    const int status = std::system(cmd.c_str());
    CommandResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out  = slurp(out);
    r.err  = slurp(err);
    return r;
}

CommandResult run_profdit(const std::string& args, const std::string& launcher) {
    return run_command(launcher + " " + PROFDIT_BIN + " " + args);
}

bool on_path(const std::string& program) {
    return std::system(("command -v '" + program + "' >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace profdit::test
