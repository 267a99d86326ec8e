// Experiment YAML: parse, validate, expand the grid and build every policy of it, as `profdit run` does
// before it loads a model.
#include "fuzz_input.h"
#include "policies/policy.h"
#include "run/experiment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto path = profdit::fuzz::write_input(data, size, ".yaml");
    return profdit::fuzz::run_parser(path, [&] {
        const auto x = profdit::run::load_experiment(path, {});
        profdit::policies::ModelFacts facts;
        facts.num_blocks = 6;
        facts.variant    = "custom";
        for (const auto& p : x.policies) (void)profdit::policies::make_policy(p.node, facts, p.source);
    });
}
