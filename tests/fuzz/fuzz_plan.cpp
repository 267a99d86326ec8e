// ProfilingDiT plan file (what `profdit profile` writes): load it and build the policy that runs it.
#include <yaml-cpp/yaml.h>

#include "fuzz_input.h"
#include "policies/policy.h"
#include "policies/profiling_dit.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = profdit::fuzz::write_input(data, size, ".yaml");
    return profdit::fuzz::run_parser(path, [&] {
        (void)profdit::policies::load_block_plan(path);
        YAML::Node node;
        node["name"] = "profiling_dit";
        node["plan"] = path;
        profdit::policies::ModelFacts facts;
        facts.num_blocks = 6;
        facts.variant    = "custom";
        (void)profdit::policies::make_policy(node, facts, "fuzz");
    });
}
