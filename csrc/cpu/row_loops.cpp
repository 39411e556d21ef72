// The row loops declared in rows.h. Each is compiled twice, for AVX2 (x86-64-v3) and for the
// baseline ISA, and the loader picks the clone the CPU supports (GCC/Clang target_clones), so
// one build runs everywhere and still vectorises the float conversions and reductions.
#include <cstring>

#include "../philox.h"
#include "rows.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WGAN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define WGAN_CLONES
#endif
#define WGAN_INLINE __attribute__((always_inline)) inline
// Lambdas too must be inlined into each clone, or their bodies stay scalar.
#define WGAN_LAMBDA_INLINE __attribute__((always_inline))

namespace wgan_kernels {
namespace cpu {
namespace {

// Independent accumulators: vectorisable without reassociation, and enough of them to hide the
// add latency (4 AVX2 registers of floats). 16 for Half, whose conversion then stays vectorised.
template <typename T>
constexpr int kLanes = std::is_same_v<T, c10::Half> ? 16 : 32;

template <typename T>
WGAN_INLINE acc_t<T> load(const T* p, int64_t i) {
  return static_cast<acc_t<T>>(p[i]);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
// Through the compiler's _Float16, the AVX2 clone converts 8 halves at once (F16C).
template <>
WGAN_INLINE float load(const c10::Half* p, int64_t i) {
  _Float16 h;
  std::memcpy(&h, p + i, sizeof(h));
  return static_cast<float>(h);
}
#endif

// sum of term(i) for i in [0, n), in kLanes independent accumulators combined in a fixed order
template <typename T, typename Term>
WGAN_INLINE acc_t<T> lane_sum(int64_t n, const Term& term) {
  constexpr int L = kLanes<T>;
  if (n < L) {  // short rows (toy data): skip setting up and folding the lanes
    acc_t<T> total = 0;
    for (int64_t i = 0; i < n; ++i) total += term(i);
    return total;
  }
  acc_t<T> lanes[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) lanes[j] += term(i + j);
  acc_t<T> total = 0;
  for (; i < n; ++i) total += term(i);
  for (int j = 0; j < L; ++j) total += lanes[j];
  return total;
}

template <typename T>
WGAN_INLINE acc_t<T> sum_squares_impl(const T* x, int64_t n) {
  return lane_sum<T>(n, [&](int64_t i) WGAN_LAMBDA_INLINE {
    const acc_t<T> v = load(x, i);
    return v * v;
  });
}

template <typename T>
WGAN_INLINE acc_t<T> sum_squared_differences_impl(const T* x, const T* y, int64_t n) {
  return lane_sum<T>(n, [&](int64_t i) WGAN_LAMBDA_INLINE {
    const acc_t<T> v = load(x, i) - load(y, i);
    return v * v;
  });
}

// Two passes over a cache-sized chunk: the mean, then the squared deviations from it.
template <typename T>
WGAN_INLINE void moments_impl(const T* x, int64_t n, double* mean, double* m2) {
  using A = acc_t<T>;
  const A mu = n ? lane_sum<T>(n, [&](int64_t i) WGAN_LAMBDA_INLINE { return load(x, i); }) / static_cast<A>(n) : A(0);
  *mean = mu;
  *m2 = lane_sum<T>(n, [&](int64_t i) WGAN_LAMBDA_INLINE {
    const A d = load(x, i) - mu;
    return d * d;
  });
}

// philox::normal4 for kBlock consecutive quads at once, written lane-wise (structure of arrays)
// so that the compiler vectorises the Philox rounds and the Box-Muller transform across quads.
// Same operations as normal4, so the same numbers.
constexpr int kBlock = 8;

WGAN_INLINE void normal4_block(uint64_t first_quad, uint64_t seed, uint64_t offset, float z[kBlock][4]) {
  uint32_t c0[kBlock], c1[kBlock], c2[kBlock], c3[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    const uint64_t quad = first_quad + j;
    c0[j] = static_cast<uint32_t>(quad);
    c1[j] = static_cast<uint32_t>(quad >> 32);
    c2[j] = static_cast<uint32_t>(offset);
    c3[j] = static_cast<uint32_t>(offset >> 32);
  }
  uint32_t k0 = static_cast<uint32_t>(seed);
  uint32_t k1 = static_cast<uint32_t>(seed >> 32) ^ philox::kPerturbStream;
  for (int round = 0; round < 10; ++round) {
    for (int j = 0; j < kBlock; ++j) {
      // high and low words computed apart: both are patterns the vectoriser knows
      const uint32_t hi0 = static_cast<uint32_t>((static_cast<uint64_t>(c0[j]) * 0xD2511F53u) >> 32);
      const uint32_t hi1 = static_cast<uint32_t>((static_cast<uint64_t>(c2[j]) * 0xCD9E8D57u) >> 32);
      const uint32_t lo0 = c0[j] * 0xD2511F53u;
      const uint32_t lo1 = c2[j] * 0xCD9E8D57u;
      c0[j] = hi1 ^ c1[j] ^ k0;
      c1[j] = lo1;
      c2[j] = hi0 ^ c3[j] ^ k1;
      c3[j] = lo0;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  float out[4][kBlock];
  for (int j = 0; j < kBlock; ++j) {
    const float u1a = static_cast<float>((c0[j] >> 8) + 1u) * (1.0f / 16777216.0f);
    const float u1b = static_cast<float>((c2[j] >> 8) + 1u) * (1.0f / 16777216.0f);
    const float ra = sqrtf(-2.0f * philox::log_unit(u1a));
    const float rb = sqrtf(-2.0f * philox::log_unit(u1b));
    float sa, ca, sb, cb;
    philox::sincos_turns(philox::uniform(c1[j]), &sa, &ca);
    philox::sincos_turns(philox::uniform(c3[j]), &sb, &cb);
    out[0][j] = ra * ca;
    out[1][j] = ra * sa;
    out[2][j] = rb * cb;
    out[3][j] = rb * sb;
  }
  for (int j = 0; j < kBlock; ++j)
    for (int k = 0; k < 4; ++k) z[j][k] = out[k][j];
}

template <typename T>
WGAN_INLINE void add_noise_quads_impl(const T* x, T* out, int64_t numel, int64_t begin, int64_t first_quad,
                                      int64_t quads, uint64_t seed, uint64_t offset, float amplitude) {
  using A = acc_t<T>;
  float z[kBlock][4];
  for (int64_t b = 0; b < quads; b += kBlock) {
    normal4_block(static_cast<uint64_t>(first_quad + b), seed, offset, z);
    const int64_t block_begin = 4 * (first_quad + b) - begin;  // element of z[0][0]
    const int64_t first = std::max<int64_t>(0, block_begin);
    const int64_t last = std::min<int64_t>(block_begin + 4 * std::min<int64_t>(kBlock, quads - b), numel);
    const float* flat = &z[0][0];
    for (int64_t e = first; e < last; ++e)
      out[e] = static_cast<T>(load(x, e) + static_cast<A>(amplitude) * static_cast<A>(flat[e - block_begin]));
  }
}

}  // namespace

#define WGAN_DEFINE_ROW_LOOPS(T)                                                                      \
  WGAN_CLONES acc_t<T> sum_squares(const T* x, int64_t n) { return sum_squares_impl(x, n); }          \
  WGAN_CLONES acc_t<T> sum_squared_differences(const T* x, const T* y, int64_t n) {                   \
    return sum_squared_differences_impl(x, y, n);                                                     \
  }                                                                                                   \
  WGAN_CLONES void scale_row(const T* x, acc_t<T> c, T* out, int64_t n) {                             \
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(c * load(x, i));                          \
  }                                                                                                   \
  WGAN_CLONES void lerp_row(const T* a, const T* b, acc_t<T> t, T* out, int64_t n) {                  \
    const acc_t<T> u = acc_t<T>(1) - t;                                                               \
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(t * load(a, i) + u * load(b, i));         \
  }                                                                                                   \
  WGAN_CLONES void lerp_backward_row(const T* g, acc_t<T> t, T* grad_a, T* grad_b, int64_t n) {       \
    const acc_t<T> u = acc_t<T>(1) - t;                                                               \
    for (int64_t i = 0; i < n; ++i) {                                                                 \
      const acc_t<T> v = load(g, i);                                                                  \
      grad_a[i] = static_cast<T>(t * v);                                                              \
      grad_b[i] = static_cast<T>(u * v);                                                              \
    }                                                                                                 \
  }                                                                                                   \
  WGAN_CLONES void difference_row(const T* x, const T* y, acc_t<T> c, T* grad_x, T* grad_y, int64_t n) { \
    for (int64_t i = 0; i < n; ++i) {                                                                 \
      const acc_t<T> v = c * (load(x, i) - load(y, i));                                               \
      grad_x[i] = static_cast<T>(v);                                                                  \
      grad_y[i] = static_cast<T>(-v);                                                                 \
    }                                                                                                 \
  }                                                                                                   \
  WGAN_CLONES void scaled_difference_row(const T* x, const T* y, acc_t<T> c, T* out, int64_t n) {     \
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(c * (load(x, i) - load(y, i)));           \
  }                                                                                                   \
  WGAN_CLONES void moments(const T* x, int64_t n, double* mean, double* m2) { moments_impl(x, n, mean, m2); } \
  WGAN_CLONES void add_noise_quads(const T* x, T* out, int64_t numel, int64_t begin, int64_t first_quad, \
                                   int64_t quads, uint64_t seed, uint64_t offset, float amplitude) {  \
    add_noise_quads_impl(x, out, numel, begin, first_quad, quads, seed, offset, amplitude);           \
  }

WGAN_DEFINE_ROW_LOOPS(float)
WGAN_DEFINE_ROW_LOOPS(double)
WGAN_DEFINE_ROW_LOOPS(c10::Half)
WGAN_DEFINE_ROW_LOOPS(c10::BFloat16)

}  // namespace cpu
}  // namespace wgan_kernels
