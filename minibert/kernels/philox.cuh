// Philox4x64-10, the counter-based generator behind numpy.random.Philox, as CUDA device functions.
//
// Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC 2011). A block of random bits is a
// pure function of a 256-bit counter and a 128-bit key: out = philox4x64_10(counter, key), four 64-bit
// words. Nothing is carried from one call to the next, so every GPU thread can jump straight to its own
// part of the stream.
//
// The stream is the one NumPy gives: np.random.Philox(key=[k0, k1], counter=[c0, c1, c2, c3]) adds one to
// the counter BEFORE each block, so its block j (j = 0, 1, ...) is philox4x64_10(c + 1 + j, key), and
// random_raw() returns the four words of each block in order. As 32-bit words (NumPy's next_uint32 and
// what these kernels use) each 64-bit word gives its low half first, then its high half: 8 per block.
//
// Conversions (the tests' NumPy reference does the same arithmetic):
//   uniform in [0, 1):  (w >> 8) * 2^-24         uniform in (0, 1]:  ((w >> 8) + 1) * 2^-24
//   normals, Box-Muller on words (w0, w1):  r = sqrt(-2 log u1), u1 in (0, 1];  t = 2 pi u2, u2 in [0, 1)
//                                           z0 = r cos t,  z1 = r sin t
//
// This file is shared, unchanged, by NVRTC (through CuPy), nvcc and the CPU emulation build; NVRTC has
// no <math.h> or <stdint.h>, so the few names needed from them are defined here.
#ifndef PHILOX_CUH
#define PHILOX_CUH

typedef unsigned int u32;
typedef unsigned long long u64;

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// Dynamic shared memory: `extern __shared__` on the GPU, a per-block buffer in the CPU emulation.
#ifdef CUDA_EMULATION
#define DYNAMIC_SHARED(type, name) type* name = (type*)cuda_emu::dynamic_shared()
#else
#define DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

#define PHILOX_M0 0xD2E7470EE14C6C93ULL  // round multipliers
#define PHILOX_M1 0xCA5A826395121157ULL
#define PHILOX_W0 0x9E3779B97F4A7C15ULL  // key increments (golden ratio, sqrt(3) - 1)
#define PHILOX_W1 0xBB67AE8584CAA73BULL
#define PHILOX_TWO_PI 6.2831853071795864769f

// Ten rounds on counter c (4 words) with key (k0, k1); the result replaces c.
__device__ __forceinline__ void philox4x64_10(u64 c[4], u64 k0, u64 k1)
{
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {  // the key is bumped between rounds
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        u64 hi0 = __umul64hi(PHILOX_M0, c[0]), lo0 = PHILOX_M0 * c[0];
        u64 hi1 = __umul64hi(PHILOX_M1, c[2]), lo1 = PHILOX_M1 * c[2];
        u64 c1 = c[1], c3 = c[3];
        c[0] = hi1 ^ c1 ^ k0;
        c[1] = lo1;
        c[2] = hi0 ^ c3 ^ k1;
        c[3] = lo0;
    }
}

// Block j of the stream np.random.Philox(key=[k0, k1], counter=ctr) as 8 32-bit words, low half first.
// The counter is a 256-bit little-endian number: c + 1 + j carries from word 0 into words 1, 2, 3.
__device__ __forceinline__ void philox_stream_block(const u64 ctr[4], u64 k0, u64 k1, u64 j, u32 w[8])
{
    u64 c[4];
    c[0] = ctr[0] + j + 1;
    u64 carry = (c[0] < ctr[0]) ? 1ULL : 0ULL;   // j + 1 <= 2^64 - 1, so at most one carry
    c[1] = ctr[1] + carry;
    carry = (carry && c[1] == 0) ? 1ULL : 0ULL;
    c[2] = ctr[2] + carry;
    carry = (carry && c[2] == 0) ? 1ULL : 0ULL;
    c[3] = ctr[3] + carry;
    philox4x64_10(c, k0, k1);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        w[2 * i] = (u32)(c[i] & 0xffffffffULL);
        w[2 * i + 1] = (u32)(c[i] >> 32);
    }
}

// Uniform float in (0, 1]: never 0, so its log is finite.
__device__ __forceinline__ float philox_uniform_open0(u32 w)
{
    return (float)((w >> 8) + 1u) * 5.9604644775390625e-08f;  // 2^-24
}

// Uniform float in [0, 1).
__device__ __forceinline__ float philox_uniform(u32 w)
{
    return (float)(w >> 8) * 5.9604644775390625e-08f;
}

// Eight standard normals from one block of words: pair p = (w[2p], w[2p+1]) gives z[2p] and z[2p+1].
__device__ __forceinline__ void philox_normals8(const u32 w[8], float z[8])
{
#pragma unroll
    for (int p = 0; p < 4; ++p) {
        float r = sqrtf(-2.0f * logf(philox_uniform_open0(w[2 * p])));
        float s, c;
        sincosf(PHILOX_TWO_PI * philox_uniform(w[2 * p + 1]), &s, &c);
        z[2 * p] = r * c;
        z[2 * p + 1] = r * s;
    }
}

// Test hook: the raw words and the normals of blocks [0, n_blocks) of one stream, one thread per block.
// words: (n_blocks, 8) u32   normals: (n_blocks, 8) float
extern "C" __global__ void philox_stream_dump(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3,
                                              long long n_blocks, u32* words, float* normals)
{
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n_blocks) return;
    const u64 ctr[4] = {c0, c1, c2, c3};
    u32 w[8];
    float z[8];
    philox_stream_block(ctr, k0, k1, (u64)j, w);
    philox_normals8(w, z);
    for (int i = 0; i < 8; ++i) {
        words[8 * j + i] = w[i];
        normals[8 * j + i] = z[i];
    }
}

#endif  // PHILOX_CUH
