#pragma once

#include <torch/torch.h>

namespace profdit::sampling {

// Latent [C, F, H, W] -> frames [F, 3, H', W'] in [-1, 1]. The Wan VAE decoder is one implementation;
// pixel-space models (the embedded world model) use the identity.
class Decoder {
  public:
    virtual ~Decoder()                                        = default;
    virtual torch::Tensor decode(const torch::Tensor& latent) = 0;
};

class IdentityDecoder : public Decoder {
  public:
    torch::Tensor decode(const torch::Tensor& latent) override {
        return latent.permute({1, 0, 2, 3}).clamp(-1, 1).contiguous();  // [F, 3, H, W]
    }
};

}  // namespace profdit::sampling
