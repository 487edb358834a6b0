// Fused attention forward with an online softmax (flash-attention style): the (T, T) scores are never
// written to global memory. For inference (no dropout) and for the KV-cache decoder.
//
// Online softmax over key tiles: keep per query row the running max m, the running sum l of
// exp(s - m) and the running output o = sum_j exp(s_j - m) v_j. A tile with scores s_j gives
//     m' = max(m, max_j s_j),  c = exp(m - m'),  l' = c l + sum_j exp(s_j - m'),  o' = c o + sum_j exp(s_j - m') v_j
// and at the end out = o / l (0 for a fully masked row, as in attention.cu).
//
// HEAD_DIM (the head size HS) is fixed at compile time (-DHEAD_DIM=64) so that a row's q and o live in
// registers. The masks are those of attention_mask.cuh.
#include "philox.cuh"
#include "attention_mask.cuh"

#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
// The tile, chosen by the launcher (minibert/kernels/attention.py, FLASH_TILE) and measured in
// bench/gpu_attention.py --sweep. FLASH_SPLIT threads share a query row, each holding the dimensions
// part, part + FLASH_SPLIT, part + 2 FLASH_SPLIT, ... of its q and o (HEAD_DIM / FLASH_SPLIT registers
// each): more threads for the same rows and fewer registers per thread. A score is then the sum of the
// FLASH_SPLIT partial dot products, by a butterfly of warp shuffles (every lane gets the same sum).
#ifndef FLASH_BQ
#define FLASH_BQ 128      // query rows per block
#endif
#ifndef FLASH_BK
#define FLASH_BK 32       // keys per shared-memory tile
#endif
#ifndef FLASH_SPLIT
#define FLASH_SPLIT 1     // threads per query row: a power of two dividing HEAD_DIM and 32
#endif
#define FLASH_THREADS (FLASH_BQ * FLASH_SPLIT)
#define ROW_DIMS (HEAD_DIM / FLASH_SPLIT)
#define DECODE_THREADS 128

// grid: (ceil(T / FLASH_BQ), NH, B)   block: FLASH_THREADS   dynamic shared: (T + FLASH_THREADS) * 4 bytes
// q, k, v, out: (B, NH, T, HEAD_DIM)   segment_ids: (B, T)   lengths: (B,)
extern "C" __global__ void flash_attention_fwd(const float* q, const float* k, const float* v,
                                               const int* segment_ids, const int* lengths, int mode,
                                               int NH, int T, float scale, float* out)
{
    __shared__ float ks[FLASH_BK][HEAD_DIM];
    __shared__ float vs[FLASH_BK][HEAD_DIM];
    DYNAMIC_SHARED(int, rank);                   // (T,) then (FLASH_THREADS,) scratch for the scan
    const int tid = threadIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int part = tid % FLASH_SPLIT;          // which of its row's threads this one is
    const int i = blockIdx.x * FLASH_BQ + tid / FLASH_SPLIT;   // this thread's query row (past T: no output)
    const long long bh = (long long)b * NH + h;
    const int length = min(lengths[b], T);
    if (mode == MASK_UNILM) block_segment_ranks(segment_ids + (long long)b * T, T, rank, rank + T);

    float qr[ROW_DIMS], o[ROW_DIMS];             // dimension part + FLASH_SPLIT * c of q (scaled) and o
    const float* qrow = q + (bh * T + min(i, T - 1)) * HEAD_DIM;
#pragma unroll
    for (int c = 0; c < ROW_DIMS; ++c) {
        qr[c] = qrow[part + FLASH_SPLIT * c] * scale;
        o[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    // keys at or past `length` are padding for every query: no tile beyond it is loaded
    int n_keys = length;
    if (mode == MASK_CAUSAL) n_keys = min(n_keys, (int)(blockIdx.x + 1) * FLASH_BQ);
    for (int t0 = 0; t0 < n_keys; t0 += FLASH_BK) {
        __syncthreads();  // the previous tile is no longer read
        for (int idx = tid; idx < FLASH_BK * HEAD_DIM; idx += FLASH_THREADS) {
            int jj = idx / HEAD_DIM, d = idx % HEAD_DIM, j = t0 + jj;
            // padding keys are loaded as 0: their weight is 0, and 0 * (whatever was there) could be NaN
            ks[jj][d] = (j < length) ? k[(bh * T + j) * HEAD_DIM + d] : 0.0f;
            vs[jj][d] = (j < length) ? v[(bh * T + j) * HEAD_DIM + d] : 0.0f;
        }
        __syncthreads();
        float s[FLASH_BK];                       // this tile's scores of this thread's row
        float tile_max = -INFINITY;
#pragma unroll
        for (int jj = 0; jj < FLASH_BK; ++jj) {
            float dot = 0.0f;
#pragma unroll
            for (int c = 0; c < ROW_DIMS; ++c) dot += qr[c] * ks[jj][part + FLASH_SPLIT * c];
            // every thread of the warp takes part in the shuffles, masked or not
#pragma unroll
            for (int lanes = FLASH_SPLIT / 2; lanes > 0; lanes /= 2)
                dot += __shfl_xor_sync(0xffffffffu, dot, lanes);
            s[jj] = (i < T && mask_allows(mode, i, t0 + jj, length, rank)) ? dot : -INFINITY;
            tile_max = fmaxf(tile_max, s[jj]);
        }
        if (tile_max == -INFINITY) continue;  // nothing visible in this tile for this row
        float m_new = fmaxf(m, tile_max);
        float c0 = expf(m - m_new);           // c above; m = -inf on the first visible tile: c0 = 0
        l *= c0;
#pragma unroll
        for (int c = 0; c < ROW_DIMS; ++c) o[c] *= c0;
#pragma unroll
        for (int jj = 0; jj < FLASH_BK; ++jj) {
            float p = (s[jj] == -INFINITY) ? 0.0f : expf(s[jj] - m_new);
            l += p;
#pragma unroll
            for (int c = 0; c < ROW_DIMS; ++c) o[c] += p * vs[jj][part + FLASH_SPLIT * c];
        }
        m = m_new;
    }
    if (i < T) {
        float inv = (l > 0.0f) ? 1.0f / l : 0.0f;
        float* orow = out + (bh * T + i) * HEAD_DIM;
#pragma unroll
        for (int c = 0; c < ROW_DIMS; ++c) orow[part + FLASH_SPLIT * c] = o[c] * inv;
    }
}

// One new query row per (b, h) against a KV cache (the decoder's step): the new token sees every cached
// position j < lengths[b] (the source, the earlier targets and itself).
// grid: (NH, B)   block: DECODE_THREADS
// q, out: (B, NH, HEAD_DIM)   k_cache, v_cache: (B, NH, T_max, HEAD_DIM)   lengths: (B,)
// Each thread runs the online softmax over keys tid, tid + DECODE_THREADS, ...; the partial (m, l, o)
// of the threads are then merged: rescale to the common max, and sum l and o by a tree.
extern "C" __global__ void flash_decode_fwd(const float* q, const float* k_cache, const float* v_cache,
                                            const int* lengths, int NH, int T_max, float scale, float* out)
{
    __shared__ float qs[HEAD_DIM];
    __shared__ float ms[DECODE_THREADS];
    __shared__ float os[DECODE_THREADS / 2][HEAD_DIM + 1];  // last column: l
    const int tid = threadIdx.x, h = blockIdx.x, b = blockIdx.y;
    const long long bh = (long long)b * NH + h;
    const int length = min(lengths[b], T_max);
    for (int d = tid; d < HEAD_DIM; d += DECODE_THREADS) qs[d] = q[bh * HEAD_DIM + d] * scale;
    __syncthreads();

    float m = -INFINITY, l = 0.0f, o[HEAD_DIM];
#pragma unroll
    for (int d = 0; d < HEAD_DIM; ++d) o[d] = 0.0f;
    for (int j = tid; j < length; j += DECODE_THREADS) {
        const float* kr = k_cache + (bh * T_max + j) * HEAD_DIM;
        const float* vr = v_cache + (bh * T_max + j) * HEAD_DIM;
        float s = 0.0f;
#pragma unroll
        for (int d = 0; d < HEAD_DIM; ++d) s += qs[d] * kr[d];
        if (s > m) {  // new running max: rescale what was summed
            float c = expf(m - s);
            l *= c;
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) o[d] *= c;
            m = s;
        }
        float p = expf(s - m);
        l += p;
#pragma unroll
        for (int d = 0; d < HEAD_DIM; ++d) o[d] += p * vr[d];
    }
    // merge: every thread rescales to the block's max M (threads that saw no key carry l = 0)
    ms[tid] = m;
    __syncthreads();
    float M = -INFINITY;
    for (int t = 0; t < DECODE_THREADS; ++t) M = fmaxf(M, ms[t]);
    float f = (m == -INFINITY) ? 0.0f : expf(m - M);
    l *= f;
#pragma unroll
    for (int d = 0; d < HEAD_DIM; ++d) o[d] *= f;
    for (int half = DECODE_THREADS / 2; half > 0; half /= 2) {
        if (tid >= half && tid < 2 * half) {
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) os[tid - half][d] = o[d];
            os[tid - half][HEAD_DIM] = l;
        }
        __syncthreads();
        if (tid < half) {
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) o[d] += os[tid][d];
            l += os[tid][HEAD_DIM];
        }
        __syncthreads();
    }
    if (tid == 0) {
        float inv = (l > 0.0f) ? 1.0f / l : 0.0f;
#pragma unroll
        for (int d = 0; d < HEAD_DIM; ++d) out[bh * HEAD_DIM + d] = o[d] * inv;
    }
}
