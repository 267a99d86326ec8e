// Parameter memory of the DiT, measured: the bytes of the live CPU tensors a model holds after loading and
// a forward (counted by an allocator that wraps LibTorch's) equal the tensor bytes of its checkpoint. The
// fused q|k|v and k|v projections must not keep second copies of their weights.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <unordered_map>

#include <c10/core/CPUAllocator.h>

#include "io/safetensors.h"
#include "wan/checkpoint.h"
#include "wan/dit.h"
#include "wan/wan_pipeline.h"
#include "test_util.h"

using namespace profdit;

namespace {

// The bytes of CPU allocations made since install() that are still alive. Once installed it stays for the rest
// of the process (a tensor may be freed late) and forwards every allocation to the allocator it replaced.
class LiveBytes final : public c10::Allocator {
  public:
    static LiveBytes& install() {
        static LiveBytes* a = new LiveBytes;  // never destroyed: its deleter may run at exit
        return *a;
    }
    int64_t live() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return live_;
    }
    c10::DataPtr       allocate(size_t n) const { return counted(n); }  // LibTorch < 2.3
    c10::DataPtr       allocate(size_t n) { return counted(n); }        // LibTorch >= 2.3 (no longer const)
    c10::DeleterFnPtr  raw_deleter() const override { return &LiveBytes::release; }
    void               copy_data(void* dest, const void* src, std::size_t n) const { std::memcpy(dest, src, n); }  // >= 2.3

  private:
    LiveBytes() : inner_(c10::GetCPUAllocator()) { c10::SetCPUAllocator(this, 255); }

    c10::DataPtr counted(size_t n) const {
        auto  d = inner_->allocate(n);
        void* p = d.get();
        if (!p) return {nullptr, nullptr, &LiveBytes::release, d.device()};
        std::lock_guard<std::mutex> lock(mutex_);
        live_ += int64_t(n);
        held_.emplace(p, std::make_pair(std::move(d), n));
        return {p, p, &LiveBytes::release, c10::Device(c10::DeviceType::CPU)};
    }
    static void release(void* p) {
        if (!p) return;
        auto&          a = install();
        c10::DataPtr   inner;
        {
            std::lock_guard<std::mutex> lock(a.mutex_);
            auto it = a.held_.find(p);
            a.live_ -= int64_t(it->second.second);
            inner = std::move(it->second.first);
            a.held_.erase(it);
        }
    }  // `inner` frees the memory here, outside the lock

    c10::Allocator*                                                    inner_;
    mutable std::mutex                                                 mutex_;
    mutable int64_t                                                    live_ = 0;
    mutable std::unordered_map<void*, std::pair<c10::DataPtr, size_t>> held_;
};

// The attention score buffer is scratch the size of activations, not parameters: the blocks run without one.
void without_attention_scratch(wan::WanModelImpl& m) {
    for (auto& b : *m.blocks) {
        auto* blk = b->as<wan::WanAttentionBlockImpl>();
        blk->self_attn->scratch.reset();
        blk->cross_attn->scratch.reset();
    }
}

int64_t parameter_bytes(wan::WanModelImpl& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel() * int64_t(p.element_size());
    return n;
}

}  // namespace

TEST(DiTMemory, LoadedModelHoldsItsCheckpointBytes) {
    const auto            path = test::data_path("wan21_tiny/dit_tiny_weights.safetensors");
    io::SafetensorsReader reader(path);
    int64_t               file_bytes = 0;
    for (const auto& n : reader.names()) file_bytes += int64_t(reader.entry(n).end - reader.entry(n).begin);
    io::SafetensorsReader golden(test::data_path("wan21_tiny/dit_tiny_io.safetensors"));
    const auto            x = golden.load("case1.x"), ctx = golden.load("case1.context");
    torch::NoGradGuard    no_grad;

    auto&         bytes  = LiveBytes::install();
    const int64_t before = bytes.live();
    auto model = wan::load_dit(path, wan::WanConfig::from_json_file(test::data_path("wan21_tiny/config.json")), torch::kCPU);
    without_attention_scratch(*model);
    EXPECT_EQ(bytes.live() - before, file_bytes) << "after loading";
    model->forward(x, 356, ctx);
    model->forward(x, 356, ctx);
    EXPECT_EQ(bytes.live() - before, file_bytes) << "after two forwards";
}

// A random-init model (init: random) in bf16 holds its parameters once: matmul weights bf16, norms, modulation,
// time embedding and head f32. PROFDIT_MEMORY_CONFIG=wan2.1-t2v-1.3b measures the real 1.3B configuration
// (about 6 GB of memory and a minute): the default is a small one.
TEST(DiTMemory, RandomInitBf16HoldsEachParameterOnce) {
    wan::WanConfig c;
    const char*    named = std::getenv("PROFDIT_MEMORY_CONFIG");
    if (named) {
        c = wan::named_config(named, "PROFDIT_MEMORY_CONFIG");
    } else {
        c.dim = 128, c.num_heads = 4, c.ffn_dim = 256, c.num_layers = 3, c.freq_dim = 64, c.in_dim = 4, c.out_dim = 4;
        c.text_dim = 48, c.text_len = 16;
    }
    torch::manual_seed(0);
    const auto         x = torch::randn({c.in_dim, 1, 8, 8}), ctx = torch::randn({5, c.text_dim});
    torch::NoGradGuard no_grad;

    auto&         bytes  = LiveBytes::install();
    const int64_t before = bytes.live();
    wan::WanModel model(c);
    wan::init_random(model, 0);
    model->set_compute_dtype(torch::kBFloat16);
    without_attention_scratch(*model);
    int64_t params = 0, bf16 = 0;
    for (const auto& p : model->parameters()) {
        params += p.numel();
        if (p.scalar_type() == torch::kBFloat16) bf16 += p.numel();
    }
    const int64_t expected = parameter_bytes(*model);
    EXPECT_EQ(expected, 2 * bf16 + 4 * (params - bf16));
    EXPECT_EQ(bytes.live() - before, expected) << "after building";
    model->forward(x, 500, ctx);
    EXPECT_EQ(bytes.live() - before, expected) << "after a forward";
    std::cout << c.variant() << " (dim " << c.dim << ", " << c.num_layers << " blocks), bf16: " << params << " parameters (" << bf16
              << " bf16, " << params - bf16 << " f32: norms, modulation, time embedding, head); held " << bytes.live() - before
              << " bytes = 2 x parameters (" << 2 * params << ") + 2 x f32 parameters (" << 2 * (params - bf16) << ")\n";
}
