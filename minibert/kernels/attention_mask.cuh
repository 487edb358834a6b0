// The attention masks, computed inside the kernels from (B,) lengths and (B, T) segment ids:
// no (B, T, T) mask is ever built. Query i may look at key j iff
//     j < length                                    (keys past the length are padding)
//     and, by mode:  MASK_PADDING  nothing more
//                    MASK_CAUSAL   j <= i
//                    MASK_UNILM    rank[j] <= rank[i],  rank = cumsum(segment ids)
// MASK_UNILM is the seq2seq mask of minibert.seq2seq_mask: the source (segment 0) sees the whole source,
// the m-th target token sees the source and target tokens 1..m.
#ifndef ATTENTION_MASK_CUH
#define ATTENTION_MASK_CUH

#define MASK_PADDING 0
#define MASK_CAUSAL 1
#define MASK_UNILM 2

__device__ __forceinline__ bool mask_allows(int mode, int i, int j, int length, const int* rank)
{
    if (j >= length) return false;
    if (mode == MASK_CAUSAL) return j <= i;
    if (mode == MASK_UNILM) return rank[j] <= rank[i];
    return true;
}

// rank[j] = seg[0] + ... + seg[j] for j < T, computed by all threads of the block together: each
// thread sums a chunk, the chunk totals are scanned, then each chunk adds the total before it.
//   seg: (T,) global   rank: (T,) shared   partial: (blockDim.x,) shared
// Every thread of the block must call it (it synchronises).
__device__ void block_segment_ranks(const int* seg, int T, int* rank, int* partial)
{
    const int nt = blockDim.x, tid = threadIdx.x;
    const int chunk = (T + nt - 1) / nt;
    const int begin = min(tid * chunk, T), end = min(begin + chunk, T);
    int run = 0;
    for (int j = begin; j < end; ++j) {
        run += seg[j];
        rank[j] = run;
    }
    partial[tid] = run;
    __syncthreads();
    if (tid == 0) {  // exclusive scan of the chunk totals (nt values)
        int total = 0;
        for (int t = 0; t < nt; ++t) {
            int v = partial[t];
            partial[t] = total;
            total += v;
        }
    }
    __syncthreads();
    for (int j = begin; j < end; ++j) rank[j] += partial[tid];
    __syncthreads();
}

// Block-wide max or sum of one float per thread, through `buf` (blockDim.x floats of shared memory).
// blockDim.x must be a power of two. Every thread gets the result.
__device__ float block_reduce(float v, float* buf, bool take_max)
{
    const int tid = threadIdx.x;
    buf[tid] = v;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (tid < half) buf[tid] = take_max ? fmaxf(buf[tid], buf[tid + half]) : buf[tid] + buf[tid + half];
        __syncthreads();
    }
    float out = buf[0];
    __syncthreads();  // buf may be reused right after
    return out;
}

#endif  // ATTENTION_MASK_CUH
