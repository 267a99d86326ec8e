#pragma once

// SentencePiece models for the tokenizer tests, trained here with SentencePiece's own trainer: Debian's
// `spm_train` CLI (package sentencepiece, installed by scripts/setup). Nothing in profdit links or loads
// libsentencepiece; the CLI tools are the oracle. umT5's special ids: pad 0, eos 1, unk 2, no bos.
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"

namespace profdit::test {

// "" when spm_train and spm_encode run; otherwise the reason to skip a test that needs them.
inline const std::string& spm_tools_missing() {
    static const std::string why = [] {
        for (const std::string tool : {"spm_train", "spm_encode"}) {
            if (!on_path(tool)) return tool + " not found (Debian package sentencepiece; scripts/setup installs it)";
            const auto r = run_command(tool + " --version");
            if (r.code != 0) return tool + " does not run here (exit " + std::to_string(r.code) + "): " + r.err.substr(0, 300);
        }
        return std::string();
    }();
    return why;
}

// GTEST_SKIP()s the calling test, with the reason, when the SentencePiece CLI tools are missing.
#define PROFDIT_SKIP_WITHOUT_SPM_TOOLS()                                                        \
    if (const std::string why_ = ::profdit::test::spm_tools_missing(); !why_.empty()) GTEST_SKIP() << why_

// The default training corpus: English captions as Wan prompts look.
inline std::vector<std::string> caption_corpus() {
    return {
        "a cat sits on the mat and looks at the red ball",
        "the dog runs in the park under a blue sky",
        "a small boat floats on the calm sea at sunset",
        "two birds fly over the green hills in the morning",
        "the old man reads a book next to the window",
        "a girl walks with her dog along the river bank",
        "snow falls on the quiet town at night & the lights glow",
        "the camera pans slowly across a field of yellow flowers",
        "a chef cooks pasta in a busy kitchen, steam rises",
        "waves crash on the rocks while seagulls call",
    };
}

// Writes `lines` (20 times over) to `dir`/spiece_corpus.txt, trains `dir`/spiece.model (unigram, about
// `vocab` pieces; `extra_args` go to spm_train last) and returns its path. An existing model is reused.
// Throws when spm_train fails; callers skip first when spm_tools_missing() says why.
inline std::string train_test_spiece(const std::string& dir, int vocab = 64, const std::string& extra_args = "",
                                     const std::vector<std::string>& lines = caption_corpus()) {
    namespace fs = std::filesystem;
    fs::create_directories(dir);
    const std::string model = (fs::path(dir) / "spiece.model").string();
    if (fs::exists(model)) return model;
    const std::string corpus = (fs::path(dir) / "spiece_corpus.txt").string();
    {
        std::ofstream f(corpus);
        for (int rep = 0; rep < 20; ++rep)
            for (const auto& l : lines) f << l << "\n";
    }
    const std::string cmd = "spm_train --input='" + corpus + "' --model_prefix='" + (fs::path(dir) / "spiece").string() +
                            "' --vocab_size=" + std::to_string(vocab) +
                            " --model_type=unigram --character_coverage=1.0 --hard_vocab_limit=false"
                            " --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --num_threads=1 " + extra_args;
    const auto r = run_command(cmd);
    if (r.code != 0 || !fs::exists(model))
        throw std::runtime_error("training the test SentencePiece model failed (" + cmd + "): " + r.err.substr(r.err.size() > 2000 ? r.err.size() - 2000 : 0));
    return model;
}

}  // namespace profdit::test
