// Langevin sampling on the GPU: one fused update for neural energies, whole chains for analytic ones.
//
// The update (unadjusted Langevin with the practical IGEBM options; see ebm/kernels/README.md):
//     x <- clamp(x - step * clip(grad U(x), -c, c) + noise * z,  lo, hi),     z ~ N(0, I)
// With step = eps / 2, noise = sqrt(eps), c = lo = -inf, hi = inf it is the post's
// x <- x - (eps/2) grad U(x) + sqrt(eps) z, which samples exp(-U); in general it samples at the
// temperature noise^2 / (2 step).
//
// Random numbers: Philox4x64-10 from philox.cuh, so each z is reproducible in NumPy (tests/cuda_emu).
#include "philox.cuh"

#define MAX_DIM 8  // the chain kernel keeps a chain's state and gradient in registers

#define ENERGY_GAUSSIAN 0  // params: mean (D), precision (D*D)
#define ENERGY_MIXTURE 1   // params per component k: log_coef_k, mean_k (D), precision_k (D*D)
#define ENERGY_BANANA 2    // params: a, b, s1, s2               (D = 2)
#define ENERGY_RING 3      // params: radius, width              (D = 2)

__device__ __forceinline__ float clip_abs(float g, float c) { return fminf(fmaxf(g, -c), c); }

// g = P (x - mu) for a (D, D) precision P stored row-major; returns (x - mu)^T P (x - mu).
__device__ __forceinline__ float precision_times(const float* mu, const float* P, int D,
                                                 const float x[MAX_DIM], float g[MAX_DIM])
{
    float d[MAX_DIM];
    float quad = 0.0f;
#pragma unroll
    for (int i = 0; i < MAX_DIM; ++i) d[i] = (i < D) ? x[i] - mu[i] : 0.0f;
#pragma unroll
    for (int i = 0; i < MAX_DIM; ++i) {
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < MAX_DIM; ++j)
            if (i < D && j < D) s += P[i * D + j] * d[j];
        g[i] = s;
        quad += d[i] * s;
    }
    return quad;
}

// g = dU/dx at x for the energy selected by `energy` (the same for every thread: no divergence).
__device__ void energy_grad(int energy, const float* params, int K, int D,
                            const float x[MAX_DIM], float g[MAX_DIM])
{
    if (energy == ENERGY_GAUSSIAN) {
        // U = 1/2 (x - mu)^T P (x - mu),  dU/dx = P (x - mu)
        precision_times(params, params + D, D, x, g);
    } else if (energy == ENERGY_MIXTURE) {
        // U = -logsumexp_k lp_k,  lp_k = log_coef_k - 1/2 (x - mu_k)^T P_k (x - mu_k)
        // dU/dx = sum_k r_k P_k (x - mu_k),  r = softmax(lp): accumulated online, one component at a time
        float m = -INFINITY, S = 0.0f, G[MAX_DIM], Pd[MAX_DIM];
#pragma unroll
        for (int i = 0; i < MAX_DIM; ++i) G[i] = 0.0f;
        const int stride = 1 + D + D * D;
        for (int k = 0; k < K; ++k) {
            const float* pk = params + k * stride;
            float lp = pk[0] - 0.5f * precision_times(pk + 1, pk + 1 + D, D, x, Pd);
            if (lp > m) {  // a new maximum: rescale what was summed so far
                float r = expf(m - lp);
                S *= r;
#pragma unroll
                for (int i = 0; i < MAX_DIM; ++i) G[i] *= r;
                m = lp;
            }
            float w = expf(lp - m);
            S += w;
#pragma unroll
            for (int i = 0; i < MAX_DIM; ++i) G[i] += w * Pd[i];
        }
#pragma unroll
        for (int i = 0; i < MAX_DIM; ++i) g[i] = G[i] / S;
    } else if (energy == ENERGY_BANANA) {
        // U = (x1 - a)^2 / (2 s1^2) + (x2 - b x1^2)^2 / (2 s2^2)
        float a = params[0], b = params[1], s1 = params[2], s2 = params[3];
        float r1 = (x[0] - a) / (s1 * s1);
        float r2 = (x[1] - b * x[0] * x[0]) / (s2 * s2);
        g[0] = r1 - 2.0f * b * x[0] * r2;
        g[1] = r2;
    } else {
        // ENERGY_RING: U = (|x| - r)^2 / (2 s^2),  dU/dx = (|x| - r) / s^2 * x / |x|, 0 at the origin
        float radius = params[0], width = params[1];
        float rho = sqrtf(x[0] * x[0] + x[1] * x[1]);
        float scale = (rho > 0.0f) ? (rho - radius) / (width * width) / rho : 0.0f;
        g[0] = scale * x[0];
        g[1] = scale * x[1];
    }
}

// Whole chains: thread i runs chain i for n_steps steps, its state in registers.
//   x: (n_chains, D) float, updated in place     first_bad_step: (n_chains,) -1, or the first step whose
//   state was not finite (the chain stops there)
// Noise: chain i reads the Philox stream counter = [0, i, 0, 0]; step s uses its blocks
// block_offset + s * nb ... + nb - 1 (nb = ceil(D / 8)), the first D of their 8 * nb normals.
extern "C" __global__ void langevin_chains(float* x, int n_chains, int D, int energy,
                                           const float* params, int K, int n_steps,
                                           float step, float noise, float grad_clip, float lo, float hi,
                                           u64 key0, u64 key1, u64 block_offset, int* first_bad_step)
{
    int chain = blockIdx.x * blockDim.x + threadIdx.x;
    if (chain >= n_chains) return;
    float xs[MAX_DIM], g[MAX_DIM];
#pragma unroll
    for (int i = 0; i < MAX_DIM; ++i) xs[i] = (i < D) ? x[(long long)chain * D + i] : 0.0f;
    const u64 ctr[4] = {0ULL, (u64)chain, 0ULL, 0ULL};
    const int nb = (D + 7) / 8;
    int bad = -1;
    for (int s = 0; s < n_steps; ++s) {
        energy_grad(energy, params, K, D, xs, g);
        u32 w[8];
        float z[8];
        bool finite = true;
        for (int b = 0; b < nb; ++b) {
            philox_stream_block(ctr, key0, key1, block_offset + (u64)(s * nb + b), w);
            philox_normals8(w, z);
#pragma unroll
            for (int t = 0; t < 8; ++t) {
                int i = b * 8 + t;
                if (i < D && i < MAX_DIM) {
                    // fminf/fmaxf drop a NaN, so the gradient is checked before it is clipped
                    float v = xs[i] - step * clip_abs(g[i], grad_clip) + noise * z[t];
                    v = fminf(fmaxf(v, lo), hi);
                    finite = finite && (g[i] - g[i] == 0.0f) && (v - v == 0.0f);  // false: inf, NaN
                    xs[i] = v;
                }
            }
        }
        if (!finite) {
            bad = s;
            break;
        }
    }
#pragma unroll
    for (int i = 0; i < MAX_DIM; ++i)
        if (i < D) x[(long long)chain * D + i] = xs[i];
    first_bad_step[chain] = bad;
}

// One fused update of any array of states given its gradient (a neural energy's backward gives it).
//   x, grad, x_out: n floats (x_out may be x)
// Noise: element e uses normal e of the Philox stream counter = [0, step_index, 1, 0]; thread t makes
// block t, i.e. the 8 normals of elements 8t ... 8t + 7.
extern "C" __global__ void langevin_update(const float* x, const float* grad, float* x_out, long long n,
                                           float step, float noise, float grad_clip, float lo, float hi,
                                           u64 key0, u64 key1, u64 step_index)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (8 * t >= n) return;
    const u64 ctr[4] = {0ULL, step_index, 1ULL, 0ULL};
    u32 w[8];
    float z[8];
    philox_stream_block(ctr, key0, key1, (u64)t, w);
    philox_normals8(w, z);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
        long long e = 8 * t + k;
        if (e < n) {
            float v = x[e] - step * clip_abs(grad[e], grad_clip) + noise * z[k];
            x_out[e] = fminf(fmaxf(v, lo), hi);
        }
    }
}
