#include "world/caption_encoder.h"

#include <set>
#include <sstream>

#include "common/error.h"

namespace profdit::world {

CaptionTokenizer::CaptionTokenizer(const WorldConfig& cfg) {
    std::set<std::string> w = {"a", "and", "moving", "over", "background", "stripes"};
    for (const auto* list : {&cfg.shapes, &cfg.colours, &cfg.backgrounds, &cfg.directions, &cfg.patterns})
        for (const auto& s : *list) w.insert(s);
    words_ = {"<pad>", "<end>"};
    words_.insert(words_.end(), w.begin(), w.end());
    for (size_t i = 0; i < words_.size(); ++i) ids_[words_[i]] = int64_t(i);
}

std::vector<int64_t> CaptionTokenizer::encode(const std::string& text) const {
    std::istringstream   is(text);
    std::vector<int64_t> out;
    for (std::string t; is >> t;) {
        auto it = ids_.find(t);
        if (it == ids_.end()) input_error("caption '" + text + "': word '" + t + "' is not in the world's vocabulary");
        out.push_back(it->second);
    }
    out.push_back(1);
    return out;
}

CaptionEncoderImpl::CaptionEncoderImpl(int64_t vocab, int64_t dim, int64_t max_len_, int64_t n_layers, int64_t heads)
    : max_len(max_len_) {
    token_embedding = register_module("token_embedding", torch::nn::Embedding(vocab, dim));
    pos_embedding   = register_parameter("pos_embedding", 0.02 * torch::randn({max_len, dim}));
    layers          = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < n_layers; ++i)
        layers->push_back(torch::nn::TransformerEncoderLayer(
            torch::nn::TransformerEncoderLayerOptions(dim, heads).dim_feedforward(2 * dim).dropout(0.0)));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
}

torch::Tensor CaptionEncoderImpl::forward(const torch::Tensor& ids) {
    const auto L   = ids.size(1);
    auto       pad = ids.eq(0);                                                  // [B, L]
    const bool any = pad.any().item<bool>();
    auto x = token_embedding(ids) + pos_embedding.narrow(0, 0, L).unsqueeze(0);  // [B, L, dim]
    auto h = x.transpose(0, 1);                                                 // [L, B, dim] (sequence first)
    for (auto& l : *layers)
        h = l->as<torch::nn::TransformerEncoderLayer>()->forward(h, {}, any ? pad : torch::Tensor());
    auto out = norm(h.transpose(0, 1));                                         // [B, L, dim]
    return any ? out.masked_fill(pad.unsqueeze(-1), 0.0) : out;                 // padded rows are zero, as the DiT pads
}

torch::Tensor WorldTextEncoder::encode(const std::string& prompt) {
    const auto ids = tok_.encode(prompt);
    if (int64_t(ids.size()) > enc_->max_len)
        input_error("caption '" + prompt + "' has " + std::to_string(ids.size()) + " tokens, the encoder takes " + std::to_string(enc_->max_len));
    auto t = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(enc_->pos_embedding.device());  // [1, L]
    return enc_->forward(t).squeeze(0);                                                         // [L, dim]
}

}  // namespace profdit::world
