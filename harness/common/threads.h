#pragma once

namespace profdit {

// CPU threads for LibTorch's intra-op pool and for the BLAS library's own pool (OpenBLAS keeps a
// separate pthread pool; left alone it spins on every core next to LibTorch's threads: measured 14 s of
// sys time in a 26 s run at --threads 1). n <= 0 leaves both at their defaults.
void set_cpu_threads(int n);

}  // namespace profdit
