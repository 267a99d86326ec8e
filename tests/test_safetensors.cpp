// Safetensors reader/writer: round trips, sharded indexes, and every malformed-file path.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "test_util.h"

using namespace profdit;
using profdit::test::temp_dir;

namespace {

std::string raw_file(const std::string& dir, const std::string& name, const std::string& header, size_t data_bytes,
                     int64_t header_len_override = -1) {
    const std::string path = dir + "/" + name;
    std::ofstream     f(path, std::ios::binary);
    uint64_t          n = header_len_override >= 0 ? uint64_t(header_len_override) : header.size();
    for (int i = 0; i < 8; ++i) f.put(char((n >> (8 * i)) & 0xff));
    f << header << std::string(data_bytes, '\0');
    return path;
}

// The InputError message of `fn`, or "" when it does not throw one.
template <typename F>
std::string input_error_of(F fn) {
    try {
        fn();
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypes) {
    const auto dir = temp_dir();
    std::map<std::string, torch::Tensor> in = {
        {"a.f32", torch::randn({3, 4})},
        {"b.f16", torch::randn({5}).to(torch::kFloat16)},
        {"c.bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16)},
        {"d.f64", torch::randn({7}, torch::kFloat64)},
        {"e.i64", torch::arange(6, torch::kInt64).view({2, 3})},
        {"f.empty", torch::zeros({0, 3})},
    };
    io::write_safetensors(dir + "/x.safetensors", in, {{"format", "pt"}});
    io::SafetensorsFile f(dir + "/x.safetensors");
    EXPECT_EQ(f.entries().size(), in.size());
    EXPECT_EQ(f.metadata().at("format"), "pt");
    for (const auto& kv : in) {
        auto t = f.load(kv.first);
        EXPECT_EQ(t.scalar_type(), kv.second.scalar_type()) << kv.first;
        EXPECT_TRUE(torch::equal(t, kv.second)) << kv.first;
    }
    EXPECT_EQ(f.find("c.bf16")->shape, (std::vector<int64_t>{2, 2, 2}));
}

TEST(Safetensors, ReadsGoldenFile) {
    io::SafetensorsReader r(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"));
    EXPECT_EQ(r.names().size(), 69u);
    EXPECT_EQ(r.entry("patch_embedding.weight").shape, (std::vector<int64_t>{64, 16, 1, 2, 2}));
    EXPECT_EQ(r.load("head.modulation").sizes(), (torch::IntArrayRef{1, 2, 64}));
}

TEST(Safetensors, ShardedIndex) {
    const auto dir = temp_dir();
    auto a = torch::randn({4}), b = torch::randn({2, 3});
    io::write_safetensors(dir + "/m-00001.safetensors", {{"a", a}});
    io::write_safetensors(dir + "/m-00002.safetensors", {{"b", b}});
    std::ofstream(dir + "/m.safetensors.index.json")
        << R"({"metadata": {}, "weight_map": {"a": "m-00001.safetensors", "b": "m-00002.safetensors"}})";
    io::SafetensorsReader r(dir + "/m.safetensors.index.json");
    EXPECT_EQ(r.names(), (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(torch::equal(r.load("b"), b));
    EXPECT_EQ(r.file_of("a"), dir + "/m-00001.safetensors");

    std::ofstream(dir + "/bad.safetensors.index.json") << R"({"weight_map": {"c": "m-00001.safetensors"}})";
    auto msg = input_error_of([&] { io::SafetensorsReader(dir + "/bad.safetensors.index.json"); });
    EXPECT_NE(msg.find("'c'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("m-00001.safetensors"), std::string::npos) << msg;

    std::ofstream(dir + "/gone.safetensors.index.json") << R"({"weight_map": {"a": "nope.safetensors"}})";
    msg = input_error_of([&] { io::SafetensorsReader(dir + "/gone.safetensors.index.json"); });
    EXPECT_NE(msg.find("nope.safetensors"), std::string::npos) << msg;

    std::ofstream(dir + "/nomap.safetensors.index.json") << R"({"metadata": {}})";
    msg = input_error_of([&] { io::SafetensorsReader(dir + "/nomap.safetensors.index.json"); });
    EXPECT_NE(msg.find("weight_map"), std::string::npos) << msg;
}

TEST(Safetensors, MissingFileAndMissingKey) {
    const auto dir = temp_dir();
    auto msg = input_error_of([&] { io::SafetensorsFile(dir + "/absent.safetensors"); });
    EXPECT_NE(msg.find("absent.safetensors"), std::string::npos) << msg;
    io::write_safetensors(dir + "/x.safetensors", {{"a", torch::ones({2})}});
    io::SafetensorsReader r(dir + "/x.safetensors");
    msg = input_error_of([&] { r.load("b"); });
    EXPECT_NE(msg.find("'b'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("x.safetensors"), std::string::npos) << msg;
}

struct Malformed {
    const char* name;
    std::string header;
    size_t      data;
    int64_t     len_override;
    const char* expect;  // part of the message
};

class SafetensorsMalformed : public ::testing::TestWithParam<Malformed> {};

TEST_P(SafetensorsMalformed, GivesOneClearError) {
    const auto& p    = GetParam();
    const auto  dir  = temp_dir();
    const auto  path = raw_file(dir, std::string(p.name) + ".safetensors", p.header, p.data, p.len_override);
    const auto  msg  = input_error_of([&] { io::SafetensorsFile f(path); });
    ASSERT_FALSE(msg.empty()) << "no InputError for " << p.name;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(p.expect), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SafetensorsMalformed,
    ::testing::Values(
        Malformed{"header_past_end", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, 1 << 20, "runs past the end"},
        Malformed{"huge_header", "{}", 0, int64_t(1) << 40, "100 MiB"},
        Malformed{"not_json", "{this is not json", 0, -1, "not valid JSON"},
        Malformed{"not_object", "[1,2,3]", 0, -1, "not a JSON object"},
        Malformed{"unknown_dtype", R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1, -1, "unknown dtype 'F8_E4M3'"},
        Malformed{"truncated_data", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, -1, "runs past the data section"},
        Malformed{"size_mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16, -1, "does not match its shape"},
        Malformed{"reversed_offsets", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 16, -1, "begin 8 > end 4"},
        Malformed{"negative_dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, -1, "non-negative"},
        Malformed{"no_offsets", R"({"a":{"dtype":"F32","shape":[1]}})", 4, -1, "data_offsets"},
        Malformed{"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, -1, "overlap"},
        Malformed{"bad_metadata", R"({"__metadata__":{"k":1}})", 0, -1, "__metadata__"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Safetensors, ShorterThanHeaderLength) {
    const auto dir  = temp_dir();
    const auto path = dir + "/short.safetensors";
    std::ofstream(path) << "abc";
    const auto msg = input_error_of([&] { io::SafetensorsFile f(path); });
    EXPECT_NE(msg.find("shorter than the 8-byte header length"), std::string::npos) << msg;
}

TEST(Safetensors, FailedWriteKeepsExistingFile) {
    const auto dir = temp_dir();
    io::write_safetensors(dir + "/keep.safetensors", {{"a", torch::ones({2})}});
    const auto msg = input_error_of([&] { io::write_safetensors(dir + "/no/such/dir/x.safetensors", {{"a", torch::ones({2})}}); });
    EXPECT_NE(msg.find("no/such/dir"), std::string::npos) << msg;
    io::SafetensorsFile f(dir + "/keep.safetensors");
    EXPECT_TRUE(torch::equal(f.load("a"), torch::ones({2})));
}
