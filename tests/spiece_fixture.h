#pragma once

// A tiny SentencePiece model for tokenizer tests, trained with sentencepiece's own trainer
// (SentencePieceTrainer::Train, reached through wan::detail::train_sentencepiece, which loads
// libsentencepiece_train privately) and umT5's special ids (pad 0, eos 1, unk 2, no bos).
// Requires PROFDIT_HAVE_SENTENCEPIECE.
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "wan/tokenizer.h"

namespace profdit::test {

// Writes a small corpus to `dir`, trains `dir`/spiece.model (unigram, `vocab` pieces at most) and returns
// its path. An existing model there is reused.
inline std::string train_test_spiece(const std::string& dir, int vocab = 64) {
    namespace fs = std::filesystem;
    fs::create_directories(dir);
    const std::string model = (fs::path(dir) / "spiece.model").string();
    if (fs::exists(model)) return model;
    const std::string corpus = (fs::path(dir) / "spiece_corpus.txt").string();
    {
        static const char* kLines[] = {
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
        std::ofstream f(corpus);
        for (int rep = 0; rep < 20; ++rep)
            for (const char* l : kLines) f << l << "\n";
    }
    const std::string args = "--input=" + corpus + " --model_prefix=" + (fs::path(dir) / "spiece").string() +
                             " --vocab_size=" + std::to_string(vocab) +
                             " --model_type=unigram --character_coverage=1.0 --hard_vocab_limit=false"
                             " --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --num_threads=1";
    const std::string error = wan::detail::train_sentencepiece(args);
    if (!error.empty()) throw std::runtime_error("training the test SentencePiece model failed: " + error);
    return model;
}

}  // namespace profdit::test
