#include "common/threads.h"

#include <dlfcn.h>

#include <torch/torch.h>

namespace profdit {

void set_cpu_threads(int n) {
    if (n <= 0) return;
    at::set_num_threads(n);
    using SetThreads = void (*)(int);
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

}  // namespace profdit
