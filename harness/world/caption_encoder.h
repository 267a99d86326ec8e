#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sampling/text_encoder.h"
#include "world/world.h"

namespace profdit::world {

// Word-level tokenizer over the caption grammar of a WorldConfig: the grammar words plus every
// shape, colour, background and direction the world knows, sorted; id 0 is padding, id 1 the end
// token. The empty caption (the negative prompt) is the end token alone.
class CaptionTokenizer {
  public:
    explicit CaptionTokenizer(const WorldConfig& cfg);
    std::vector<int64_t>            encode(const std::string& text) const;  // ends with the end token
    int64_t                         vocab_size() const { return int64_t(words_.size()); }
    const std::vector<std::string>& words() const { return words_; }

  private:
    std::vector<std::string>       words_;
    std::map<std::string, int64_t> ids_;
};

// Token embedding + learned positions + transformer encoder layers (umT5's role for this world):
// ids [B, L] -> [B, L, text_dim]. Padding ids (0) are masked as keys and their rows are zero, so a
// padded batch gives each caption exactly what it gives alone, zero-padded as the DiT pads.
class CaptionEncoderImpl : public torch::nn::Module {
  public:
    CaptionEncoderImpl(int64_t vocab, int64_t dim, int64_t max_len, int64_t layers, int64_t heads);
    torch::Tensor forward(const torch::Tensor& ids);  // [B, L] int64 -> [B, L, dim]

    torch::nn::Embedding                       token_embedding{nullptr};
    torch::Tensor                              pos_embedding;  // [max_len, dim]
    torch::nn::ModuleList                      layers{nullptr};
    torch::nn::LayerNorm                       norm{nullptr};
    int64_t                                    max_len;
};
TORCH_MODULE(CaptionEncoder);

// The TextEncoder for this world: tokenizer + encoder, one prompt at a time.
class WorldTextEncoder : public sampling::TextEncoder {
  public:
    WorldTextEncoder(CaptionTokenizer tok, CaptionEncoder enc) : tok_(std::move(tok)), enc_(std::move(enc)) {}
    torch::Tensor encode(const std::string& prompt) override;  // [L, text_dim]

  private:
    CaptionTokenizer tok_;
    CaptionEncoder   enc_;
};

}  // namespace profdit::world
