// scripts/cuda-check, the first step of `scripts/build cuda`: on any machine, a Torch that cannot serve
// the CUDA build is refused with exit code 2 and every missing piece named (no GPU needed to test that).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "test_util.h"

using namespace profdit;
namespace fs = std::filesystem;

namespace {

std::string cuda_check() { return fs::canonical(std::string(PROFDIT_TEST_DATA) + "/../../scripts/cuda-check").string(); }

// A LibTorch tree whose TorchConfig.cmake carries `abi_flag` and that has no libtorch_cuda (a CPU build).
std::string fake_libtorch(const std::string& dir, const std::string& abi_flag) {
    fs::create_directories(dir + "/share/cmake/Torch");
    fs::create_directories(dir + "/lib");
    std::ofstream(dir + "/share/cmake/Torch/TorchConfig.cmake") << "set(TORCH_CXX_FLAGS \"-D_GLIBCXX_USE_CXX11_ABI=" << abi_flag << "\")\n";
    std::ofstream(dir + "/build-version") << "2.5.1+cpu\n";
    return dir + "/share/cmake/Torch";
}

}  // namespace

TEST(CudaCheck, TorchDirWithoutConfigIsNamed) {
    const auto dir = test::temp_dir();
    const auto r   = test::run_command("Torch_DIR='" + dir + "' " + cuda_check());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("Torch_DIR=" + dir + " holds no TorchConfig.cmake"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");  // nothing for scripts/build to use
}

TEST(CudaCheck, CpuOnlyAndOldAbiTorchAreNamed) {
    const auto dir = test::temp_dir();
    const auto r   = test::run_command("Torch_DIR='" + fake_libtorch(dir + "/libtorch", "0") + "' " + cuda_check());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("Torch 2.5.1+cpu"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("CPU-only build (no CUDA)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pre-C++11 string ABI"), std::string::npos) << r.err;
    const auto ok_abi = test::run_command("Torch_DIR='" + fake_libtorch(dir + "/libtorch11", "1") + "' " + cuda_check());
    EXPECT_EQ(ok_abi.code, 2);
    EXPECT_EQ(ok_abi.err.find("pre-C++11 string ABI"), std::string::npos) << ok_abi.err;
}

TEST(CudaCheck, PythonWithoutTorchIsNamed) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/python3") << "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n";
    fs::permissions(dir + "/python3", fs::perms::owner_all);
    const auto r = test::run_command("env -u Torch_DIR PROFDIT_PYTHON='" + dir + "/python3' " + cuda_check());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find(dir + "/python3 has no torch module"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pip install torch"), std::string::npos) << r.err;
}
