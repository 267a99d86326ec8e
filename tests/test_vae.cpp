// The Wan2.1 VAE decoder against the official reference's tiny decoder (tests/data/wan21_tiny, see the
// README there): chunked decode parity, the latent statistics, diffusers names, config detection, the
// per-chunk memory bound, load errors and determinism.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "wan/vae.h"

using namespace profdit;

namespace {

constexpr double kTol = 1e-4;

std::string weights_path() { return test::data_path("wan21_tiny/vae_tiny_decoder_weights.safetensors"); }

const io::SafetensorsReader& golden() {
    static io::SafetensorsReader r(test::data_path("wan21_tiny/vae_tiny_decoder_io.safetensors"));
    return r;
}

torch::Tensor g(const std::string& key) { return golden().load(key); }

wan::WanVAEDecoder tiny_vae() { return wan::load_vae_decoder(weights_path(), torch::kCPU); }

std::map<std::string, torch::Tensor> tiny_weights() { return io::SafetensorsReader(weights_path()).load_all(); }

// The InputError message of loading `tensors` written to a temp file (empty when it loads).
std::string load_error(const std::map<std::string, torch::Tensor>& tensors, std::string* path_out = nullptr) {
    const auto path = test::temp_dir() + "/vae.safetensors";
    io::write_safetensors(path, tensors);
    if (path_out) *path_out = path;
    try {
        wan::load_vae_decoder(path, torch::kCPU);
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(VAEParity, ChunkedDecodeMatchesTheReference) {
    auto vae = tiny_vae();
    auto z   = g("z");  // [16, 4, 4, 6]
    auto raw = vae->decode_raw(z);
    auto out = vae->decode(z);
    ASSERT_EQ(raw.sizes(), (std::vector<int64_t>{3, 13, 32, 48}));
    const double e_raw = test::max_abs_diff(raw, g("decoded_raw"));
    const double e_out = test::max_abs_diff(out, g("decoded"));
    std::cout << "[ measured ] max abs error decoded_raw " << e_raw << ", decoded " << e_out << "\n";
    EXPECT_LT(e_raw, kTol) << "decoded_raw max abs error " << e_raw;
    EXPECT_LT(e_out, kTol) << "decoded max abs error " << e_out;
    EXPECT_GT(g("decoded_raw").abs().max().item<double>(), 1.0);  // the clamp is exercised
}

TEST(VAEParity, LatentStatisticsAreTheReferenceConstants) {
    auto mean = g("latents_mean"), std = g("latents_std");
    for (int i = 0; i < 16; ++i) {
        EXPECT_EQ(wan::wan21_latents_mean()[i], mean[i].item<float>()) << "channel " << i;
        EXPECT_EQ(wan::wan21_latents_std()[i], std[i].item<float>()) << "channel " << i;
    }
    auto vae = tiny_vae();
    EXPECT_TRUE(torch::equal(vae->mean, mean));
    EXPECT_TRUE(torch::equal(vae->inv_std, 1.0 / std));
}

TEST(VAEParity, DecoderInterfaceGivesFramesFirst) {
    wan::VAEDecoder dec(tiny_vae());
    sampling::Decoder& d = dec;
    auto frames = d.decode(g("z"));  // [13, 3, 32, 48]
    ASSERT_EQ(frames.sizes(), (std::vector<int64_t>{13, 3, 32, 48}));
    EXPECT_LT(test::max_abs_diff(frames, g("decoded").permute({1, 0, 2, 3})), kTol);
    EXPECT_LE(frames.abs().max().item<double>(), 1.0);
}

TEST(VAEParity, TwoDecodesAreBitIdentical) {
    auto vae = tiny_vae();
    auto z   = g("z");
    auto a = vae->decode_raw(z), b = vae->decode_raw(z);
    EXPECT_TRUE(torch::equal(a, b));
    // A fresh decode after a longer one starts from cleared caches (the conv kernels may block a 1-frame input
    // differently from a 4-frame one, hence a tolerance rather than bit equality).
    auto single = vae->decode_raw(z.narrow(1, 0, 1));  // [3, 1, 32, 48]
    EXPECT_LT(test::max_abs_diff(single, a.narrow(1, 0, 1)), 1e-5);
}

TEST(VAEConfig, DetectedFromTheWeights) {
    io::SafetensorsReader r(weights_path());
    wan::ShapeMap         shapes;
    for (const auto& n : r.names()) shapes[n] = r.entry(n).shape;
    const auto c = wan::VAEConfig::detect_from_weights(shapes, r.path());
    EXPECT_EQ(c.dim, 4);
    EXPECT_EQ(c.z_dim, 16);
    EXPECT_EQ(c.dim_mult, (std::vector<int64_t>{1, 2, 4, 4}));
    EXPECT_EQ(c.num_res_blocks, 2);
    EXPECT_EQ(c.temporal_upsample, (std::vector<bool>{true, true, false}));
    EXPECT_EQ(c.dims(), (std::vector<int64_t>{16, 16, 16, 8, 4}));

    const wan::VAEConfig real;
    EXPECT_EQ(real.dims(), (std::vector<int64_t>{384, 384, 384, 192, 96}));
    EXPECT_EQ(real.out_frames(21), 81);
    EXPECT_EQ(real.spatial_factor(), 8);
    wan::WanVAEDecoder model(real);  // the real layout's parameter names and shapes
    std::map<std::string, std::vector<int64_t>> p;
    for (auto& kv : model->named_parameters()) p[kv.key()] = kv.value().sizes().vec();
    EXPECT_EQ(p.size(), shapes.size());
    EXPECT_EQ(p["decoder.upsamples.3.time_conv.weight"], (std::vector<int64_t>{768, 384, 3, 1, 1}));
    EXPECT_EQ(p["decoder.upsamples.4.shortcut.weight"], (std::vector<int64_t>{384, 192, 1, 1, 1}));
    EXPECT_EQ(p["decoder.upsamples.11.resample.1.weight"], (std::vector<int64_t>{96, 192, 3, 3}));
    EXPECT_EQ(p["decoder.head.2.weight"], (std::vector<int64_t>{3, 96, 3, 3, 3}));
    EXPECT_EQ(p["decoder.middle.1.norm.gamma"], (std::vector<int64_t>{384, 1, 1}));
}

TEST(VAELoad, DiffusersNamesGiveIdenticalOutput) {
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.upsamples.4.shortcut.bias"), "decoder.up_blocks.1.resnets.0.conv_shortcut.bias");
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.middle.2.residual.3.gamma"), "decoder.mid_block.resnets.1.norm2.gamma");
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.middle.1.to_qkv.weight"), "decoder.mid_block.attentions.0.to_qkv.weight");
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.upsamples.11.resample.1.weight"), "decoder.up_blocks.2.upsamplers.0.resample.1.weight");
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.upsamples.7.time_conv.bias"), "decoder.up_blocks.1.upsamplers.0.time_conv.bias");
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.upsamples.14.residual.6.weight"), "decoder.up_blocks.3.resnets.2.conv2.weight");
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.head.0.gamma"), "decoder.norm_out.gamma");
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.head.2.weight"), "decoder.conv_out.weight");
    EXPECT_EQ(wan::vae_official_to_diffusers("decoder.conv1.bias"), "decoder.conv_in.bias");
    EXPECT_EQ(wan::vae_official_to_diffusers("conv2.weight"), "post_quant_conv.weight");
    EXPECT_EQ(wan::vae_diffusers_to_official("encoder.conv_in.weight"), "");
    EXPECT_EQ(wan::vae_diffusers_to_official("quant_conv.weight"), "");

    std::map<std::string, torch::Tensor> renamed;
    for (const auto& [k, v] : tiny_weights()) {
        const auto d = wan::vae_official_to_diffusers(k);
        EXPECT_EQ(wan::vae_diffusers_to_official(d), k);
        renamed[d] = v;
    }
    renamed["encoder.conv_in.weight"] = torch::zeros({4, 3, 3, 3, 3});  // ignored, as in a full AutoencoderKLWan file
    renamed["quant_conv.weight"]      = torch::zeros({32, 32, 1, 1, 1});
    const auto path = test::temp_dir() + "/diffusion_pytorch_model.safetensors";
    io::write_safetensors(path, renamed);
    auto z = g("z");
    EXPECT_TRUE(torch::equal(wan::load_vae_decoder(path, torch::kCPU)->decode_raw(z), tiny_vae()->decode_raw(z)));
}

TEST(VAELoad, HalfPrecisionStorageLoads) {
    std::map<std::string, torch::Tensor> half;
    for (const auto& [k, v] : tiny_weights()) half[k] = v.to(torch::kBFloat16);
    const auto path = test::temp_dir() + "/vae_bf16.safetensors";
    io::write_safetensors(path, half);
    auto vae = wan::load_vae_decoder(path, torch::kCPU);  // bf16 storage, f32 compute
    EXPECT_EQ(vae->conv2->weight.scalar_type(), torch::kFloat32);
    const double e = test::max_abs_diff(vae->decode(g("z")), g("decoded"));
    std::cout << "[ measured ] bf16-stored weights, f32 compute: max abs error " << e << "\n";
    EXPECT_LT(e, 0.1) << e;
}

// Weights kept in bf16 (half the memory); the computation stays f32, so the error is the weights' rounding.
TEST(VAELoad, Bf16WeightsComputeInF32) {
    auto vae = wan::load_vae_decoder(weights_path(), torch::kCPU, torch::kBFloat16);
    EXPECT_EQ(vae->conv2->weight.scalar_type(), torch::kBFloat16);
    auto out = vae->decode(g("z"));  // [3, 13, 32, 48]
    EXPECT_EQ(out.scalar_type(), torch::kFloat32);
    const double e = test::max_abs_diff(out, g("decoded"));
    std::cout << "[ measured ] bf16 weights, f32 compute: max abs error " << e << "\n";
    EXPECT_LT(e, 0.1) << e;
}

TEST(VAEErrors, MissingKeyIsNamed) {
    auto w = tiny_weights();
    w.erase("decoder.middle.1.proj.weight");
    std::string path;
    const auto msg = load_error(w, &path);
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("decoder.middle.1.proj.weight"), std::string::npos) << msg;
    w = tiny_weights();
    w.erase("conv2.weight");  // needed to detect the config
    const auto msg2 = load_error(w);
    EXPECT_NE(msg2.find("conv2.weight"), std::string::npos) << msg2;
}

TEST(VAEErrors, MisShapedKeyIsNamed) {
    auto w = tiny_weights();
    w["decoder.upsamples.5.residual.2.bias"] = torch::zeros({17});
    std::string path;
    const auto msg = load_error(w, &path);
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("decoder.upsamples.5.residual.2.bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[17]"), std::string::npos) << msg;
}

TEST(VAEErrors, PthGetsTheConversionOneLiner) {
    try {
        wan::load_vae_decoder("/models/Wan2.1_VAE.pth", torch::kCPU);
        FAIL() << "no error";
    } catch (const InputError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("/models/Wan2.1_VAE.pth"), std::string::npos) << msg;
        EXPECT_NE(msg.find("save_file"), std::string::npos) << msg;
        EXPECT_NE(msg.find("safetensors"), std::string::npos) << msg;
    }
}

// Peak RSS growth of decoding latent [16, F, 16, 16] (frames 128 x 128) with the tiny weights, measured in a
// child process with every buffer over 1 MB its own mapping (so the peak is of live memory), minus the
// output tensor itself (3 x F' x 128 x 128 f32, which any decoder must hold).
double decode_peak_growth_minus_output(int64_t frames) {
    int fds[2];
    if (pipe(fds) != 0) return -3;
    const pid_t pid = fork();
    if (pid == 0) {
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 20);
        torch::set_num_threads(1);
        auto vae = tiny_vae();
        torch::manual_seed(5);
        auto z = torch::randn({16, frames, 16, 16});
        vae->decode_raw(torch::randn({16, 1, 4, 4}));  // one-time allocations
        rusage before{}, after{};
        getrusage(RUSAGE_SELF, &before);
        auto out = vae->decode_raw(z);  // [3, F', 128, 128]
        getrusage(RUSAGE_SELF, &after);
        double grown = double(after.ru_maxrss - before.ru_maxrss) * 1024.0 - double(out.numel()) * 4;
        if (!out.isfinite().all().item<bool>()) grown = -1;
        (void)!write(fds[1], &grown, sizeof grown);
        _exit(0);
    }
    close(fds[1]);
    double grown = -2;
    if (read(fds[0], &grown, sizeof grown) != ssize_t(sizeof grown)) grown = -2;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return grown;
}

// Chunked decoding holds one latent frame's intermediates (plus 2-frame caches), so the working memory
// beyond the output does not grow with the number of latent frames: 12 frames stay within 1.25 x the
// working memory of 3 frames plus 4 MB. Most of it is the CPU conv3d's im2col buffer for one chunk
// (C_in x 27 x 4 frames x H x W floats at the full-resolution stage); a full-sequence pass would need
// about 4 x as much for 12 frames as for 3.
TEST(VAEMemory, WorkingMemoryIsBoundedPerChunk) {
    const double few = decode_peak_growth_minus_output(3), many = decode_peak_growth_minus_output(12);
    ASSERT_GE(few, -8e6) << "child failed (" << few << ")";
    ASSERT_GE(many, -8e6) << "child failed (" << many << ")";
    const double bound = 1.25 * std::max(few, 0.0) + 4e6;
    std::cout << "[ measured ] working memory beyond the output: 3 latent frames " << few / 1e6 << " MB, 12 latent frames "
              << many / 1e6 << " MB; bound " << bound / 1e6 << " MB\n";
    EXPECT_LT(many, bound);
}
