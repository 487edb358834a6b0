// Run unchanged CUDA kernel sources on the CPU, for tests on machines without a GPU.
//
// A launch runs the blocks of the grid one after another. The threads of a block are real OS threads, so
// __syncthreads() is a real barrier (std::barrier) and a missing one shows up as a wrong result. Because
// only one block exists at a time, `__shared__` can simply mean `static`: one copy, seen by every thread
// of the running block. Dynamic shared memory is a buffer sized at launch (see DYNAMIC_SHARED in the
// kernel headers). A thread that returns drops out of the barrier, as exited threads do on the GPU.
//
// Compile:  g++ -std=c++20 -O2 -pthread -DCUDA_EMULATION -include cuda_emu.h kernel.cu
// Warps are modelled only as far as __shfl_xor_sync: an exchange through a slot per thread between two
// block-wide barriers, so every thread of the block must reach the same shuffles (the kernels here call
// them outside any branch). Not modelled: warp votes, concurrency between blocks (no atomics across
// blocks needed), and the GPU's exact float rounding of expf/logf.
#pragma once

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace cuda_emu {
inline thread_local dim3 thread_idx;
inline dim3 block_idx, block_dim, grid_dim;
inline std::barrier<>* block_barrier = nullptr;
inline std::unique_ptr<double[]> shared_buffer;

inline void* dynamic_shared() { return shared_buffer.get(); }

// Run kernel() for every thread of every block of the grid.
template <class Kernel>
void launch(dim3 grid, dim3 block, size_t shared_bytes, Kernel kernel)
{
    grid_dim = grid;
    block_dim = block;
    const unsigned n_threads = block.x * block.y * block.z;
    const size_t n_doubles = shared_bytes / sizeof(double) + 1;
    shared_buffer.reset(new double[n_doubles]);
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                block_idx = dim3(bx, by, bz);
                // shared memory starts as garbage on the GPU: fill it with NaN bytes so reading
                // before writing is caught by the comparisons
                std::memset(shared_buffer.get(), 0xff, n_doubles * sizeof(double));
                std::barrier<> barrier(n_threads);
                block_barrier = &barrier;
                std::vector<std::thread> threads;
                threads.reserve(n_threads);
                for (unsigned t = 0; t < n_threads; ++t)
                    threads.emplace_back([&, t] {
                        thread_idx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
                        kernel();
                        barrier.arrive_and_drop();
                    });
                for (auto& th : threads) th.join();
                block_barrier = nullptr;
            }
}
}  // namespace cuda_emu

#define threadIdx (cuda_emu::thread_idx)
#define blockIdx (cuda_emu::block_idx)
#define blockDim (cuda_emu::block_dim)
#define gridDim (cuda_emu::grid_dim)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict__

inline void __syncthreads() { cuda_emu::block_barrier->arrive_and_wait(); }

namespace cuda_emu {
inline float shuffle_slots[1024];  // one per thread of the running block (blocks have at most 1024)
}

// The value of `v` in the lane whose index differs from this one's by the bits of lane_mask (< 32).
inline float __shfl_xor_sync(unsigned, float v, int lane_mask)
{
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    cuda_emu::shuffle_slots[t] = v;
    __syncthreads();
    const float other = cuda_emu::shuffle_slots[t ^ (unsigned)lane_mask];
    __syncthreads();
    return other;
}

// The device intrinsics the kernels use, with their CUDA meaning.
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b)
{
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline float __int_as_float(int i)
{
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
