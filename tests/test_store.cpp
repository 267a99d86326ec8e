
#include "store/store.h"

#include <hdf5.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/error.h"
#include "store/h5.h"
#include "test_util.h"

namespace profdit::store {
namespace {

namespace fs = std::filesystem;
using Names  = std::vector<std::string>;

FileInfo make_info(const std::string& yaml = "prompts: [a red ball]\nsteps: 4\n") {
    FileInfo info;
    info.profdit_version = "0.4.0";
    info.git_commit      = "abc123";
    info.torch_version   = "1.13.0";
    info.device          = "cpu";
    info.dtype           = "fp32";
    info.created         = "2024-05-01T12:00:00Z";
    info.experiment_yaml = yaml;
    return info;
}

Record::Dataset ds(const torch::Tensor& t, bool compress = false) { return {t, {}, {}, compress}; }

torch::Tensor step_ms(int k) { return torch::arange(8, torch::kFloat64).reshape({4, 2}) + k; }
torch::Tensor video(int k) {
    return (torch::arange(4 * 16 * 16 * 3).reshape({4, 16, 16, 3}) * 7 + k).remainder(256).to(torch::kUInt8);
}

// A run record whose content depends on k only.
Record run_record(int k, bool with_video = false) {
    Record r;
    r.str_attrs = {{"policy", "step_skip"}, {"policy_params", "every: 2\n"}, {"prompt", "a red ball"}};
    r.int_attrs = {{"seed", 1000 + k}, {"prompt_index", k % 3}};
    r.datasets["latency/step_ms"] = ds(step_ms(k));
    Record::Dataset dit = ds(torch::tensor(12.5 + k, torch::kFloat64));
    dit.num_attrs                     = {{"spread", 0.25}};
    r.datasets["latency/dit_ms"]      = dit;
    r.datasets["cache/compute_mask"]  = ds((torch::arange(24).reshape({4, 2, 3}) + k).remainder(2).to(torch::kUInt8));
    Record::Dataset psnr = ds(torch::full({5}, 30.0 + k, torch::kFloat64));
    psnr.num_attrs             = {{"mean", 30.0 + k}};
    psnr.str_attrs             = {{"note", "vs reference"}};
    r.datasets["metrics/psnr"] = psnr;
    if (with_video) r.datasets["video"] = ds(video(k), true);
    return r;
}

void expect_run(const Store& s, const std::string& group, int k, bool with_video = false) {
    SCOPED_TRACE(group);
    EXPECT_EQ(s.status(group), "done");
    EXPECT_TRUE(s.read_dataset(group + "/latency/step_ms").equal(step_ms(k)));
    EXPECT_EQ(s.read_int_attr(group, "seed"), 1000 + k);
    if (with_video) {
        EXPECT_TRUE(s.read_dataset(group + "/video").equal(video(k)));
    }
}

template <class F>
std::string input_error_of(F&& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no InputError";
    return "";
}

std::string slurp(const std::string& path) {
    std::ifstream     f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void set_format_version(const std::string& path, int64_t version) {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    H5Adelete(f, "format_version");
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr  = H5Acreate2(f, "format_version", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT64, &version);
    H5Aclose(attr);
    H5Sclose(space);
    ASSERT_GE(H5Fclose(f), 0);
}

TEST(StoreRoundTrip, EveryDtypeAndRank) {
    const auto path = test::temp_dir() + "/x.h5";
    auto       s    = Store::open(path, make_info(), false);
    torch::manual_seed(0);
    const std::map<std::string, torch::Tensor> tensors = {
        {"f32_r3", torch::randn({2, 3, 4})},
        {"f32_r5", torch::randn({1, 2, 1, 3, 2})},
        {"f32_r0", torch::tensor(0.5f)},
        {"f64_r0", torch::tensor(3.25, torch::kFloat64)},
        {"f64_r1", torch::randn({7}, torch::kFloat64)},
        {"f64_empty", torch::zeros({0, 3}, torch::kFloat64)},
        {"i64_r2", torch::arange(-6, 6).reshape({3, 4})},
        {"i64_r0", torch::tensor(int64_t(-42))},
        {"i32_r1", torch::arange(-3, 3, torch::kInt32)},
        {"i16_r1", torch::arange(-3, 3, torch::kInt16)},
        {"i8_r1", torch::arange(-3, 3, torch::kInt8)},
        {"u8_r2", torch::randint(0, 256, {5, 6}).to(torch::kUInt8)},
    };
    const auto frames = torch::randint(0, 256, {6, 24, 32, 3}).to(torch::kUInt8);
    Record     r;
    for (const auto& [name, t] : tensors) r.datasets["d/" + name] = ds(t);
    r.datasets["d/bool"]              = ds(torch::tensor({true, false, true}));
    r.datasets["d/f64_compressed"]    = ds(tensors.at("f64_r1"), true);
    r.datasets["d/scalar_compressed"] = ds(torch::tensor(1.5), true);
    r.datasets["video"]               = ds(frames, true);
    s.write("/runs/a", r, "done");

    for (const auto& [name, t] : tensors) {
        SCOPED_TRACE(name);
        const auto back = s.read_dataset("/runs/a/d/" + name);
        EXPECT_EQ(back.scalar_type(), t.scalar_type());
        EXPECT_EQ(back.sizes(), t.sizes());
        EXPECT_TRUE(back.equal(t));
    }
    EXPECT_TRUE(s.read_dataset("/runs/a/d/bool").equal(torch::tensor({1, 0, 1}).to(torch::kUInt8)));
    EXPECT_TRUE(s.read_dataset("/runs/a/d/f64_compressed").equal(tensors.at("f64_r1")));
    EXPECT_EQ(s.read_dataset("/runs/a/d/scalar_compressed").dim(), 0);
    EXPECT_TRUE(s.read_dataset("runs/a/video").equal(frames));

    // The video is chunked one frame per chunk with deflate.
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t d    = H5Dopen2(f, "/runs/a/video", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d);
    EXPECT_EQ(H5Pget_layout(dcpl), H5D_CHUNKED);
    EXPECT_EQ(H5Pget_nfilters(dcpl), 1);
    hsize_t chunk[4] = {};
    EXPECT_EQ(H5Pget_chunk(dcpl, 4, chunk), 4);
    EXPECT_EQ(std::vector<hsize_t>(chunk, chunk + 4), (std::vector<hsize_t>{1, 24, 32, 3}));
    H5Pclose(dcpl);
    H5Dclose(d);
    H5Fclose(f);

    Record bad;
    bad.datasets["half"] = ds(torch::zeros({2}, torch::kFloat16));
    EXPECT_THROW(s.write("/runs/bad", bad, "done"), std::runtime_error);
    EXPECT_EQ(s.status("/runs/bad"), "");  // the failed write left nothing behind
    EXPECT_TRUE(s.read_dataset("/runs/a/d/f32_r3").equal(tensors.at("f32_r3")));
}

TEST(StoreRoundTrip, Attributes) {
    const auto  path = test::temp_dir() + "/x.h5";
    std::string yaml = "prompts:\n";
    while (yaml.size() < 100000) yaml += "  - \"a café scene with ünïcode ☕ and a long description\"\n";
    FileInfo info = make_info(yaml);
    info.shard    = "2/3";
    auto s        = Store::open(path, info, false);

    Record r;
    r.str_attrs = {{"prompt", "café — ünïcode ☕"}, {"empty", ""}, {"policy_params", "name: teacache\nthreshold: 0.08\n"}};
    r.num_attrs = {{"x", 0.1}, {"neg", -2.5e10}};
    r.int_attrs = {{"seed", int64_t(1) << 40}};
    Record::Dataset d = ds(torch::zeros({2}));
    d.num_attrs                = {{"mean", 1.25}};
    d.str_attrs                = {{"note", "per frame"}};
    r.datasets["metrics/psnr"] = d;
    s.write("runs/a", r, "done");

    EXPECT_EQ(s.read_str_attr("/runs/a", "prompt"), "café — ünïcode ☕");
    EXPECT_EQ(s.read_str_attr("/runs/a", "empty"), "");
    EXPECT_EQ(s.read_str_attr("/runs/a", "policy_params"), "name: teacache\nthreshold: 0.08\n");
    EXPECT_EQ(s.read_num_attr("/runs/a", "x"), 0.1);
    EXPECT_EQ(s.read_num_attr("/runs/a", "neg"), -2.5e10);
    EXPECT_EQ(s.read_int_attr("/runs/a", "seed"), int64_t(1) << 40);
    EXPECT_EQ(s.read_num_attr("/runs/a", "seed"), double(int64_t(1) << 40));
    EXPECT_EQ(s.read_num_attr("/runs/a/metrics/psnr", "mean"), 1.25);
    EXPECT_EQ(s.read_str_attr("/runs/a/metrics/psnr", "note"), "per frame");

    const auto missing = input_error_of([&] { s.read_str_attr("/runs/a", "nope"); });
    EXPECT_NE(missing.find(path), std::string::npos) << missing;
    EXPECT_NE(missing.find("/runs/a"), std::string::npos) << missing;
    EXPECT_NE(missing.find("nope"), std::string::npos) << missing;
    const auto no_dataset = input_error_of([&] { s.read_dataset("/runs/a/latency/e2e_ms"); });
    EXPECT_NE(no_dataset.find("/runs/a/latency/e2e_ms"), std::string::npos) << no_dataset;

    const FileInfo back = Store::read_info(path);
    EXPECT_EQ(back.format_version, kFormatVersion);
    EXPECT_EQ(back.profdit_version, info.profdit_version);
    EXPECT_EQ(back.git_commit, info.git_commit);
    EXPECT_EQ(back.torch_version, info.torch_version);
    EXPECT_EQ(back.device, info.device);
    EXPECT_EQ(back.dtype, info.dtype);
    EXPECT_EQ(back.created, info.created);
    EXPECT_EQ(back.experiment_yaml, yaml);
    EXPECT_EQ(back.shard, "2/3");
    EXPECT_TRUE(back.merged_from.empty());
}

TEST(StoreWrite, ReplacesTheGroup) {
    auto   s = Store::open(test::temp_dir() + "/x.h5", make_info(), false);
    Record a;
    a.str_attrs                   = {{"policy", "x"}, {"only_a", "1"}};
    a.datasets["latency/step_ms"] = ds(torch::ones({2}));
    a.datasets["metrics/psnr"]    = ds(torch::ones({3}));
    s.write("/runs/r", a, "failed: out of memory");
    Record b;
    b.str_attrs                = {{"policy", "y"}};
    b.datasets["metrics/ssim"] = ds(torch::zeros({3}));
    s.write("/runs/r", b, "done");

    EXPECT_EQ(s.status("/runs/r"), "done");
    EXPECT_EQ(s.read_str_attr("/runs/r", "policy"), "y");
    EXPECT_THROW(s.read_str_attr("/runs/r", "only_a"), InputError);
    EXPECT_EQ(s.groups("/runs/r"), Names{"metrics"});
    EXPECT_EQ(s.datasets("/runs/r/metrics"), Names{"ssim"});
    EXPECT_FALSE(s.exists("/runs/r/latency"));
}

TEST(StoreStatus, LifeCycle) {
    auto s = Store::open(test::temp_dir() + "/x.h5", make_info(), false);
    EXPECT_EQ(s.status("/runs/x"), "");
    s.set_status("/runs/x", "running");
    EXPECT_EQ(s.status("/runs/x"), "running");
    EXPECT_EQ(s.groups("/runs"), Names{"x"});
    s.write("/runs/x", run_record(1), "done");
    EXPECT_EQ(s.status("/runs/x"), "done");
    expect_run(s, "/runs/x", 1);

    s.set_status("/runs/y", "running");
    s.set_status("/runs/y", "failed: CUDA out of memory");
    EXPECT_EQ(s.status("runs/y"), "failed: CUDA out of memory");
    s.set_status("/references/0_42", "running");
    EXPECT_EQ(s.status("/references/0_42"), "running");
    EXPECT_EQ(s.status("/runs"), "");
    EXPECT_EQ(s.groups("/runs"), (Names{"x", "y"}));
}

TEST(StoreGroups, SortedChildGroups) {
    auto s = Store::open(test::temp_dir() + "/x.h5", make_info(), false);
    for (const char* name : {"b", "a", "c"}) s.write(std::string("/runs/") + name, run_record(0), "done");
    EXPECT_EQ(s.groups("/runs"), (Names{"a", "b", "c"}));
    EXPECT_EQ(s.groups("runs/"), (Names{"a", "b", "c"}));
    EXPECT_EQ(s.groups("/runs/a"), (Names{"cache", "latency", "metrics"}));
    EXPECT_EQ(s.datasets("/runs/a/latency"), (Names{"dit_ms", "step_ms"}));
    EXPECT_TRUE(s.groups("/runs/a/latency").empty());
    EXPECT_TRUE(s.groups("/references").empty());
    EXPECT_TRUE(s.groups("/nothing/here").empty());
    EXPECT_TRUE(s.exists("/runs/a/latency/dit_ms"));
    EXPECT_FALSE(s.exists("/runs/a/latency/dit_ms/x"));
}

TEST(StoreResume, ExistingFileNeedsResume) {
    const auto path = test::temp_dir() + "/x.h5";
    Store::open(path, make_info(), false);
    const auto what = input_error_of([&] { Store::open(path, make_info(), false); });
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("--resume"), std::string::npos) << what;
}

TEST(StoreResume, ContinuesTheFile) {
    const auto path = test::temp_dir() + "/sub/dir/x.h5";
    auto       s    = Store::open(path, make_info(), true);  // no file yet: created
    s.write("/runs/a", run_record(0), "done");
    FileInfo later   = make_info();
    later.git_commit = "def456";
    auto again       = Store::open(path, later, true);
    expect_run(again, "/runs/a", 0);
    again.write("/runs/b", run_record(1), "done");
    EXPECT_EQ(again.groups("/runs"), (Names{"a", "b"}));
    EXPECT_EQ(Store::read_info(path).git_commit, "abc123");
}

TEST(StoreResume, DifferentExperimentIsRefused) {
    const auto path = test::temp_dir() + "/x.h5";
    Store::open(path, make_info(), false);
    const auto what = input_error_of([&] { Store::open(path, make_info("steps: 50\n"), true); });
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("different experiment"), std::string::npos) << what;
}

TEST(StoreResume, NewerFormatVersionIsRefused) {
    const auto path = test::temp_dir() + "/x.h5";
    Store::open(path, make_info(), false);
    set_format_version(path, kFormatVersion + 1);
    for (const auto& what : {input_error_of([&] { Store::open(path, make_info(), true); }),
                             input_error_of([&] { Store::read_info(path); })}) {
        EXPECT_NE(what.find(path), std::string::npos) << what;
        EXPECT_NE(what.find("format version 2"), std::string::npos) << what;
        EXPECT_NE(what.find("update profdit"), std::string::npos) << what;
    }
}

TEST(StoreResume, NotAnHdf5File) {
    const auto path = test::temp_dir() + "/x.h5";
    std::ofstream(path) << "this is a text file\n";
    for (const auto& what : {input_error_of([&] { Store::open(path, make_info(), true); }),
                             input_error_of([&] { Store::read_info(path); })}) {
        EXPECT_NE(what.find(path), std::string::npos) << what;
        EXPECT_NE(what.find("not an HDF5 file"), std::string::npos) << what;
    }
    EXPECT_EQ(slurp(path), "this is a text file\n");
    EXPECT_FALSE(fs::exists(h5::journal_path(path)));
    const auto missing = test::temp_dir() + "/none.h5";
    const auto what    = input_error_of([&] { Store::read_info(missing); });
    EXPECT_NE(what.find(missing), std::string::npos) << what;
}

TEST(StoreKill, SelfKillBetweenWrites) {
    const auto path = test::temp_dir() + "/x.h5";
    auto       s    = Store::open(path, make_info(), false);
    std::vector<Record> records;
    for (int k = 0; k < 5; ++k) records.push_back(run_record(k, true));

    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        try {
            for (int k = 0; k < 5; ++k) {
                s.set_status("/runs/r" + std::to_string(k), "running");
                s.write("/runs/r" + std::to_string(k), records[size_t(k)], "done");
            }
        } catch (...) {
            _exit(3);
        }
        raise(SIGKILL);
        _exit(4);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGKILL);

    auto again = Store::open(path, make_info(), true);
    for (int k = 0; k < 5; ++k) expect_run(again, "/runs/r" + std::to_string(k), k, true);
    EXPECT_FALSE(fs::exists(h5::journal_path(path)));
}

// Kills a writer while the journal exists (mid-write, replacing a finished group): the next open restores the
// file byte for byte.
TEST(StoreKill, InterruptedWriteIsRolledBack) {
    const auto path    = test::temp_dir() + "/x.h5";
    const auto journal = h5::journal_path(path);
    auto       s       = Store::open(path, make_info(), false);
    s.write("/runs/a", run_record(0), "done");
    s.write("/runs/b", run_record(1), "done");
    const std::string before = slurp(path);
    torch::manual_seed(1);
    Record big = run_record(2);
    big.datasets["video"] = ds(torch::randint(0, 256, {64, 256, 256, 3}).to(torch::kUInt8), true);

    // The child may not grow any file past the current size + 1 MiB: the big write (12 MiB of video) reaches
    // that limit mid-write, always, and its SIGXFSZ handler then SIGKILLs the child while the journal exists.
    const rlim_t limit = rlim_t(before.size()) + (rlim_t(1) << 20);
    const pid_t  pid   = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        struct rlimit rl = {limit, limit};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(6);
        ::signal(SIGXFSZ, [](int) { kill(getpid(), SIGKILL); });
        try {
            s.write("/runs/b", big, "done");
        } catch (...) {
            _exit(3);
        }
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer was not killed: exit code " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    ASSERT_TRUE(fs::exists(journal));

    EXPECT_EQ(s.status("/runs/b"), "done");  // a read repairs the file first
    EXPECT_FALSE(fs::exists(journal));
    EXPECT_TRUE(slurp(path) == before) << "the file differs from its state before the killed write";
    expect_run(s, "/runs/b", 1);
    EXPECT_FALSE(s.exists("/runs/b/video"));
    EXPECT_EQ(s.groups("/runs"), (Names{"a", "b"}));
}

// A child writes records in a tight loop and is killed at a random moment; every write that returned survives.
TEST(StoreKill, RandomMomentInATightLoop) {
    const auto                path    = test::temp_dir() + "/x.h5";
    auto                      s       = Store::open(path, make_info(), false);
    const unsigned            seed    = std::random_device{}();
    const std::vector<Record> records = {run_record(0, true), run_record(1), run_record(2, true)};
    std::mt19937              rng(seed);
    auto name = [](int round, int i) { return "/runs/r" + std::to_string(round) + "_" + std::to_string(i); };
    SCOPED_TRACE("seed " + std::to_string(seed));

    std::vector<int> finished;
    for (int round = 0; round < 16; ++round) {
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            try {
                for (int i = 0;; ++i) {
                    s.set_status(name(round, i), "running");
                    s.write(name(round, i), records[size_t(i % 3)], "done");
                    if (i % 4 == 3) s.write(name(round, i - 2), records[size_t((i - 2) % 3)], "done");  // rerun
                    if (::write(fds[1], &i, sizeof i) != ssize_t(sizeof i)) _exit(5);
                }
            } catch (...) {
                _exit(3);
            }
        }
        close(fds[1]);
        int last = -1, v = 0;
        while (last < 1 && ::read(fds[0], &v, sizeof v) == ssize_t(sizeof v)) last = v;
        std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20000)(rng)));
        kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the writer failed with exit code " << WEXITSTATUS(status);
        while (::read(fds[0], &v, sizeof v) == ssize_t(sizeof v)) last = v;
        close(fds[0]);
        finished.push_back(last + 1);

        SCOPED_TRACE("round " + std::to_string(round));
        auto again = Store::open(path, make_info(), true);
        for (int r = 0; r <= round; ++r)
            for (int i = 0; i < finished[size_t(r)]; ++i) expect_run(again, name(r, i), i % 3, i % 3 != 1);
        const auto in_flight = again.status(name(round, last + 1));
        EXPECT_TRUE(in_flight == "" || in_flight == "running" || in_flight == "done") << in_flight;
        EXPECT_FALSE(fs::exists(h5::journal_path(path)));
    }
}

struct Shards {
    std::string dir, a, b, out;
};

Shards make_shards(const FileInfo& info_b) {
    Shards sh;
    sh.dir      = test::temp_dir();
    sh.a        = sh.dir + "/a.h5";
    sh.b        = sh.dir + "/b.h5";
    sh.out      = sh.dir + "/merged.h5";
    FileInfo ia = make_info();
    ia.shard    = "1/2";
    auto a      = Store::open(sh.a, ia, false);
    a.write("/runs/r0", run_record(0, true), "done");
    a.write("/runs/r2", run_record(2), "done");
    a.set_status("/runs/r4", "running");
    a.write("/references/0_1000", run_record(10), "done");
    auto b = Store::open(sh.b, info_b, false);
    b.write("/runs/r1", run_record(1), "done");
    b.set_status("/runs/r3", "failed: out of memory");
    b.write("/references/0_1000", run_record(11), "done");
    return sh;
}

FileInfo shard_b_info() {
    FileInfo info   = make_info();
    info.shard      = "2/2";
    info.git_commit = "def456";
    return info;
}

TEST(StoreMerge, TwoShardsGiveTheUnion) {
    const Shards sh      = make_shards(shard_b_info());
    const auto   summary = merge(sh.out, {sh.a, sh.b}, false);
    EXPECT_EQ(summary.copied, (Names{"/references/0_1000", "/runs/r0", "/runs/r1", "/runs/r2"}));
    EXPECT_EQ(summary.skipped.size(), 2u);

    const auto m = Store::open_existing(sh.out);
    EXPECT_EQ(m.groups("/runs"), (Names{"r0", "r1", "r2"}));
    EXPECT_EQ(m.groups("/references"), Names{"0_1000"});
    expect_run(m, "/runs/r0", 0, true);
    expect_run(m, "/runs/r1", 1);
    expect_run(m, "/runs/r2", 2);
    expect_run(m, "/references/0_1000", 10);  // the first input's copy
    EXPECT_EQ(m.read_num_attr("/runs/r0/metrics/psnr", "mean"), 30.0);

    const FileInfo info = Store::read_info(sh.out);
    EXPECT_EQ(info.shard, "");
    EXPECT_EQ(info.git_commit, "abc123");
    EXPECT_EQ(info.merged_from, (Names{sh.a, sh.b}));
    EXPECT_EQ(info.experiment_yaml, make_info().experiment_yaml);
}

TEST(StoreMerge, MismatchedShardsAreRefused) {
    FileInfo other_yaml = shard_b_info();
    other_yaml.experiment_yaml += "seeds: [1]\n";
    FileInfo other_dtype = shard_b_info();
    other_dtype.dtype    = "bf16";
    for (const auto& [info, what] : {std::pair{other_yaml, std::string("experiment_yaml")},
                                     std::pair{other_dtype, std::string("dtype")}}) {
        const Shards sh  = make_shards(info);
        const auto   msg = input_error_of([&] { merge(sh.out, {sh.a, sh.b}, false); });
        EXPECT_NE(msg.find(sh.a), std::string::npos) << msg;
        EXPECT_NE(msg.find(sh.b), std::string::npos) << msg;
        EXPECT_NE(msg.find(what), std::string::npos) << msg;
        EXPECT_FALSE(fs::exists(sh.out));
    }
}

TEST(StoreMerge, DuplicateGroupMustBeDoneInBoth) {
    const Shards sh = make_shards(shard_b_info());
    Store::open_existing(sh.b).set_status("/runs/r0", "failed: killed");
    const auto msg = input_error_of([&] { merge(sh.out, {sh.a, sh.b}, false); });
    EXPECT_NE(msg.find("/runs/r0"), std::string::npos) << msg;
    EXPECT_NE(msg.find(sh.a), std::string::npos) << msg;
    EXPECT_NE(msg.find(sh.b), std::string::npos) << msg;
    EXPECT_NE(msg.find("failed: killed"), std::string::npos) << msg;
}

TEST(StoreMerge, RefusesToOverwrite) {
    const Shards sh = make_shards(shard_b_info());
    merge(sh.out, {sh.a}, false);
    const auto msg = input_error_of([&] { merge(sh.out, {sh.a, sh.b}, false); });
    EXPECT_NE(msg.find(sh.out), std::string::npos) << msg;
    EXPECT_EQ(Store::open_existing(sh.out).groups("/runs"), (Names{"r0", "r2"}));
    merge(sh.out, {sh.a, sh.b}, true);
    EXPECT_EQ(Store::open_existing(sh.out).groups("/runs"), (Names{"r0", "r1", "r2"}));
    for (const auto& entry : fs::directory_iterator(sh.dir))
        EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
}

TEST(StoreH5py, ReadsTheFiles) {
    const std::string python = test::python_with("h5py");
    if (python.empty()) GTEST_SKIP() << "python3 with h5py not found";
    const Shards sh = make_shards(shard_b_info());
    merge(sh.out, {sh.a, sh.b}, false);
    const std::string script = sh.dir + "/check.py";
    std::ofstream(script) << R"(import sys
import h5py
import numpy as np

def text(v):
    return v.decode('utf-8') if isinstance(v, bytes) else str(v)

with h5py.File(sys.argv[1], 'r') as f:
    assert int(f.attrs['format_version']) == 1
    assert text(f.attrs['experiment_yaml']) == 'prompts: [a red ball]\nsteps: 4\n'
    assert text(f.attrs['shard']) == '1/2'
    g = f['runs/r0']
    assert text(g.attrs['status']) == 'done'
    assert text(g.attrs['prompt']) == 'a red ball'
    assert int(g.attrs['seed']) == 1000
    step = g['latency/step_ms'][()]
    assert step.dtype == np.float64 and step.shape == (4, 2) and step[1, 1] == 3.0
    dit = g['latency/dit_ms']
    assert dit.shape == () and float(dit[()]) == 12.5 and float(dit.attrs['spread']) == 0.25
    assert g['cache/compute_mask'].dtype == np.uint8 and g['cache/compute_mask'].shape == (4, 2, 3)
    psnr = g['metrics/psnr']
    assert float(psnr.attrs['mean']) == 30.0 and text(psnr.attrs['note']) == 'vs reference'
    v = g['video']
    assert v.dtype == np.uint8 and v.shape == (4, 16, 16, 3)
    assert v.compression == 'gzip' and v.compression_opts == 4 and v.chunks == (1, 16, 16, 3)
    assert int(v[0, 0, 0, 1]) == 7
    assert sorted(f['runs']) == ['r0', 'r2', 'r4']

with h5py.File(sys.argv[2], 'r') as m:
    assert [text(x) for x in m.attrs['merged_from']] == sys.argv[3:]
    assert text(m.attrs['shard']) == ''
    assert sorted(m['runs']) == ['r0', 'r1', 'r2']
    assert float(m['references/0_1000/latency/dit_ms'][()]) == 22.5
print('ok')
)";
    const std::string log = sh.dir + "/check.log";
    const int rc = std::system((python + " " + script + " " + sh.a + " " + sh.out + " " + sh.a + " " + sh.b + " >" +
                                log + " 2>&1")
                                   .c_str());
    EXPECT_EQ(rc, 0) << slurp(log);
}

}  // namespace
}  // namespace profdit::store

