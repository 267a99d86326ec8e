#pragma once

#include <memory>
#include <string>

#include <torch/torch.h>

namespace profdit::wan {

// umT5's tokenizer as Wan2.1 uses it (HuggingfaceTokenizer(google/umt5-xxl, clean='whitespace')): clean
// the text, SentencePiece-encode it, append EOS (id 1), truncate to text_len keeping EOS last, pad with
// id 0. The SentencePiece step is profdit's own (sentencepiece.h), so every build has it.
class Tokenizer {
  public:
    struct Encoded {
        torch::Tensor ids;         // int64 [1, text_len]
        torch::Tensor mask;        // int64 [1, text_len], 1 for the real tokens (EOS included), 0 for padding
        int64_t       length = 0;  // number of real tokens
    };

    // A spiece.model file, or a folder holding one (HF/diffusers `tokenizer/`, google/umt5-xxl/) or
    // holding `tokenizer/spiece.model`. Missing or unreadable: InputError naming the path.
    static Tokenizer load(const std::string& spiece_model_or_folder);

    Encoded encode(const std::string& text, int64_t text_len = 512) const;

    // ftfy-less basic_clean + whitespace_clean: html entities unescaped twice, whitespace runs (Unicode
    // white space, as Python's \s) collapsed to one space, stripped.
    static std::string clean(const std::string& text);

    const std::string& path() const;
    int64_t            vocab_size() const;

  private:
    struct Impl;
    std::shared_ptr<const Impl> impl_;
};

}  // namespace profdit::wan
