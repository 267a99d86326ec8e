#pragma once

#include <string>

#include <torch/torch.h>

namespace profdit::sampling {

// Prompt -> context rows [L, text_dim] for the DiT (unpadded; the DiT pads to text_len). umT5 is one
// implementation, the embedded world's caption encoder another.
class TextEncoder {
  public:
    virtual ~TextEncoder()                                   = default;
    virtual torch::Tensor encode(const std::string& prompt) = 0;  // [L, text_dim], L >= 1
};

}  // namespace profdit::sampling
