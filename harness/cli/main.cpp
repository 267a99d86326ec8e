#include <malloc.h>

#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
    using namespace profdit;
    // Tensor buffers of a few MB are freed and reallocated every model call: keep them in the heap rather
    // than mmap/munmap them each time (the page faults cost more than the small models' arithmetic).
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    CLI::App app{"profdit: feature-cache policies for Wan2.1 video diffusion, measured"};
    app.require_subcommand(1);
    const std::vector<cli::Command> commands = {cli::add_dit_forward(app), cli::add_sample(app), cli::add_info(app), cli::add_synth(app),
                                               cli::add_train(app),       cli::add_world_eval(app),
#ifdef PROFDIT_HAVE_HDF5
                                               cli::add_run(app),         cli::add_merge(app),       cli::add_profile(app),
                                               cli::add_report(app),
#endif
#if defined(PROFDIT_HAVE_HDF5) && defined(PROFDIT_HAVE_EIGEN)
                                               cli::add_calibrate(app),
#endif
    };
    if (argc > 1 && argv[1][0] != '-') {
        std::string known;
        bool        found = false;
        for (const auto& c : commands) {
            known += (known.empty() ? "" : ", ") + c.app->get_name();
            found = found || c.app->get_name() == argv[1];
        }
        if (!found) {
            std::cerr << "profdit: error: unknown command '" << argv[1] << "' (accepted: " << known << ")\n";
            return 2;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "profdit: error: " << e.what() << "\n";
        return 2;
    }
    try {
        for (const auto& c : commands)
            if (c.app->parsed()) return c.run();
    } catch (const InputError& e) {
        std::cerr << "profdit: error: " << e.what() << "\n";
        return 2;
    } catch (const c10::Error& e) {
        std::cerr << "profdit: runtime failure: " << e.what_without_backtrace() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "profdit: runtime failure: " << e.what() << "\n";
        return 1;
    }
    return 1;
}
