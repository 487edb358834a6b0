// Attention scores -> masked softmax -> dropout in one kernel, and its backward in another.
//
// Forward, one block per query row (b, h, i):
//     s_j = scale * q_i . k_j  where the mask allows (i, j), else -inf     (attention_mask.cuh)
//     P_ij = softmax_j(s)                 a fully masked row gives P = 0 (and so an output of 0)
//     A_ij = keep_ij * P_ij / (1 - p)     keep_ij = (Philox word u_ij >= p * 2^32)
// P (needed by the backward) and A are written; the scores and the mask never are.
// Backward, one block per row:  dP = keep * dA / (1 - p);  dS = P * (dP - sum_j dP_j P_j)
// The matmuls around it (A @ v, dS @ k, ...) are left to cuBLAS by the Python wrapper.
//
// Dropout words: row r = (b * NH + h) * T + i reads the Philox stream counter = [0, r, 0, 0]; key j of
// the row uses 32-bit word j (block j / 8, word j % 8). Each thread handles runs of 8 keys, so it makes
// every Philox block once.
#include "philox.cuh"
#include "attention_mask.cuh"

// grid: (T, NH, B)   block: power of two   dynamic shared: (T + HS + 2 * blockDim.x) * 4 bytes
// q, k: (B, NH, T, HS)   segment_ids: (B, T)   lengths: (B,)   probs, att: (B, NH, T, T)
extern "C" __global__ void attn_softmax_dropout_fwd(const float* q, const float* k, const int* segment_ids,
                                                    const int* lengths, int mode, int NH, int T, int HS,
                                                    float scale, u32 drop_threshold, float keep_scale,
                                                    u64 key0, u64 key1, float* probs, float* att)
{
    const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, nt = blockDim.x;
    DYNAMIC_SHARED(float, smem);
    int* rank = (int*)smem;                      // (T,)
    float* qs = smem + T;                        // (HS,)
    float* red = qs + HS;                        // (nt,) reductions
    int* partial = (int*)(red + nt);             // (nt,) scan
    const long long bh = (long long)b * NH + h;
    const long long row = bh * T + i;
    const int length = lengths[b];
    if (mode == MASK_UNILM) block_segment_ranks(segment_ids + (long long)b * T, T, rank, partial);
    for (int d = tid; d < HS; d += nt) qs[d] = q[row * HS + d];
    __syncthreads();

    float* prow = probs + row * T;
    float* arow = att + row * T;
    const float* kb = k + bh * T * HS;
    // pass 1: scores into the probs row, and their max
    float m = -INFINITY;
    for (int j0 = 8 * tid; j0 < T; j0 += 8 * nt)
        for (int j = j0; j < min(j0 + 8, T); ++j) {
            float s = -INFINITY;
            if (mask_allows(mode, i, j, length, rank)) {
                float dot = 0.0f;
                for (int d = 0; d < HS; ++d) dot += qs[d] * kb[(long long)j * HS + d];
                s = scale * dot;
            }
            prow[j] = s;
            m = fmaxf(m, s);
        }
    m = block_reduce(m, red, true);
    // pass 2: exponentials and their sum (a fully masked row has m = -inf and stays all zero)
    float sum = 0.0f;
    for (int j0 = 8 * tid; j0 < T; j0 += 8 * nt)
        for (int j = j0; j < min(j0 + 8, T); ++j) {
            float e = (m == -INFINITY || prow[j] == -INFINITY) ? 0.0f : expf(prow[j] - m);
            prow[j] = e;
            sum += e;
        }
    sum = block_reduce(sum, red, false);
    const float inv = (sum > 0.0f) ? 1.0f / sum : 0.0f;
    // pass 3: normalise, then dropout with this row's Philox words
    const u64 ctr[4] = {0ULL, (u64)row, 0ULL, 0ULL};
    for (int j0 = 8 * tid; j0 < T; j0 += 8 * nt) {
        u32 w[8];
        if (drop_threshold != 0u) philox_stream_block(ctr, key0, key1, (u64)(j0 / 8), w);
        for (int j = j0; j < min(j0 + 8, T); ++j) {
            float p = prow[j] * inv;
            prow[j] = p;
            bool keep = (drop_threshold == 0u) || (w[j - j0] >= drop_threshold);
            arow[j] = keep ? p * keep_scale : 0.0f;
        }
    }
}

// grid: (B * NH * T,)   block: power of two   dynamic shared: blockDim.x * 4 bytes
// datt, probs, dscores: (B, NH, T, T); dscores is the gradient with respect to the scaled scores s.
extern "C" __global__ void attn_softmax_dropout_bwd(const float* datt, const float* probs, int T,
                                                    u32 drop_threshold, float keep_scale, u64 key0, u64 key1,
                                                    float* dscores)
{
    const long long row = blockIdx.x;
    const int tid = threadIdx.x, nt = blockDim.x;
    DYNAMIC_SHARED(float, red);
    const float* prow = probs + row * T;
    const float* darow = datt + row * T;
    float* dsrow = dscores + row * T;
    const u64 ctr[4] = {0ULL, (u64)row, 0ULL, 0ULL};
    // forward was: A = keep * P / (1 - p), so dP = keep * dA / (1 - p); dS needs sum_j dP_j P_j first
    float dot = 0.0f;
    for (int j0 = 8 * tid; j0 < T; j0 += 8 * nt) {
        u32 w[8];
        if (drop_threshold != 0u) philox_stream_block(ctr, key0, key1, (u64)(j0 / 8), w);
        for (int j = j0; j < min(j0 + 8, T); ++j) {
            bool keep = (drop_threshold == 0u) || (w[j - j0] >= drop_threshold);
            float dp = keep ? darow[j] * keep_scale : 0.0f;
            dsrow[j] = dp;  // kept here until the row's sum is known
            dot += dp * prow[j];
        }
    }
    dot = block_reduce(dot, red, false);
    // forward was: P = softmax(s), so dS_j = P_j (dP_j - sum_k dP_k P_k); masked keys have P = 0
    for (int j0 = 8 * tid; j0 < T; j0 += 8 * nt)
        for (int j = j0; j < min(j0 + 8, T); ++j) dsrow[j] = prow[j] * (dsrow[j] - dot);
}
