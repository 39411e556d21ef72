// The row loops declared in rows.h. Each is compiled twice, for AVX2 (x86-64-v3) and for the
// baseline ISA, and the loader picks the clone the CPU supports (GCC/Clang target_clones), so
// one build runs everywhere and still vectorises the float conversions and reductions.
#include <cstdlib>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

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
// add latency (4 AVX2 registers of floats).
constexpr int kLanes = 32;

template <typename T>
WGAN_INLINE acc_t<T> load(const T* p, int64_t i) {
  return static_cast<acc_t<T>>(p[i]);
}

// sum of term(i) for i in [0, n), in kLanes independent accumulators combined in a fixed order
template <typename T, typename Term>
WGAN_INLINE acc_t<T> lane_sum(int64_t n, const Term& term) {
  constexpr int L = kLanes;
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
WGAN_DEFINE_ROW_LOOPS(c10::BFloat16)

// ---------------------------------------------------------------------------------------
// float16: GCC (12) converts c10::Half and _Float16 one element at a time, which made the
// float16 loops 4-10x slower than eager PyTorch. They convert kStage elements at a time
// instead (F16C: 8 per instruction, where the CPU has it) into float buffers on the stack and
// run the float loops above on those. Same rounding: to nearest, ties to even.

namespace {

constexpr int64_t kStage = 512;

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx,f16c"))) void to_floats_f16c(const c10::Half* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = static_cast<float>(in[i]);
}

__attribute__((target("avx,f16c"))) void to_halves_f16c(const float* in, c10::Half* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) out[i] = static_cast<c10::Half>(in[i]);
}

// WGAN_KERNELS_NO_F16C=1 takes the scalar conversions, so that the tests can compare the two
bool has_f16c() {
  static const bool yes =
      std::getenv("WGAN_KERNELS_NO_F16C") == nullptr && (__builtin_cpu_init(), __builtin_cpu_supports("f16c"));
  return yes;
}
#else
bool has_f16c() { return false; }
void to_floats_f16c(const c10::Half*, float*, int64_t) {}
void to_halves_f16c(const float*, c10::Half*, int64_t) {}
#endif

void to_floats(const c10::Half* in, float* out, int64_t n) {
  if (has_f16c()) return to_floats_f16c(in, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]);
}

void to_halves(const float* in, c10::Half* out, int64_t n) {
  if (has_f16c()) return to_halves_f16c(in, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<c10::Half>(in[i]);
}

// fn(begin, length) over [0, n) in stages of at most kStage elements
template <typename F>
WGAN_INLINE void in_stages(int64_t n, const F& fn) {
  for (int64_t begin = 0; begin < n; begin += kStage) fn(begin, std::min(kStage, n - begin));
}

using Half = c10::Half;

}  // namespace

float sum_squares(const Half* x, int64_t n) {
  float xs[kStage], total = 0;
  in_stages(n, [&](int64_t b, int64_t len) {
    to_floats(x + b, xs, len);
    total += sum_squares(xs, len);
  });
  return total;
}

float sum_squared_differences(const Half* x, const Half* y, int64_t n) {
  float xs[kStage], ys[kStage], total = 0;
  in_stages(n, [&](int64_t b, int64_t len) {
    to_floats(x + b, xs, len);
    to_floats(y + b, ys, len);
    total += sum_squared_differences(xs, ys, len);
  });
  return total;
}

void scale_row(const Half* x, float c, Half* out, int64_t n) {
  float xs[kStage], os[kStage];
  in_stages(n, [&](int64_t b, int64_t len) {
    to_floats(x + b, xs, len);
    scale_row(xs, c, os, len);
    to_halves(os, out + b, len);
  });
}

// out = float_loop(x, y) on float copies of x and y, stage by stage
template <typename FloatLoop>
WGAN_INLINE void two_to_one(const Half* x, const Half* y, Half* out, int64_t n, const FloatLoop& float_loop) {
  float xs[kStage], ys[kStage], os[kStage];
  in_stages(n, [&](int64_t s, int64_t len) {
    to_floats(x + s, xs, len);
    to_floats(y + s, ys, len);
    float_loop(xs, ys, os, len);
    to_halves(os, out + s, len);
  });
}

void lerp_row(const Half* a, const Half* b, float t, Half* out, int64_t n) {
  two_to_one(a, b, out, n, [t](const float* as, const float* bs, float* os, int64_t len) {
    lerp_row(as, bs, t, os, len);
  });
}

void lerp_backward_row(const Half* g, float t, Half* grad_a, Half* grad_b, int64_t n) {
  float gs[kStage], as[kStage], bs[kStage];
  in_stages(n, [&](int64_t s, int64_t len) {
    to_floats(g + s, gs, len);
    lerp_backward_row(gs, t, as, bs, len);
    to_halves(as, grad_a + s, len);
    to_halves(bs, grad_b + s, len);
  });
}

void difference_row(const Half* x, const Half* y, float c, Half* grad_x, Half* grad_y, int64_t n) {
  float xs[kStage], ys[kStage], gxs[kStage], gys[kStage];
  in_stages(n, [&](int64_t s, int64_t len) {
    to_floats(x + s, xs, len);
    to_floats(y + s, ys, len);
    difference_row(xs, ys, c, gxs, gys, len);
    to_halves(gxs, grad_x + s, len);
    to_halves(gys, grad_y + s, len);
  });
}

void scaled_difference_row(const Half* x, const Half* y, float c, Half* out, int64_t n) {
  two_to_one(x, y, out, n, [c](const float* xs, const float* ys, float* os, int64_t len) {
    scaled_difference_row(xs, ys, c, os, len);
  });
}

void moments(const Half* x, int64_t n, double* mean, double* m2) {
  float xs[kStage];
  Moments all;
  in_stages(n, [&](int64_t s, int64_t len) {
    double stage_mean, stage_m2;
    to_floats(x + s, xs, len);
    moments(xs, len, &stage_mean, &stage_m2);
    all.merge(static_cast<double>(len), stage_mean, stage_m2);
  });
  *mean = all.mean;
  *m2 = all.m2;
}

void add_noise_quads(const Half* x, Half* out, int64_t numel, int64_t begin, int64_t first_quad, int64_t quads,
                     uint64_t seed, uint64_t offset, float amplitude) {
  // each stage: the elements [e0, e1) of a run of whole quads, handed on as a row of their own
  // whose stream position starts at begin + e0
  constexpr int64_t kStageQuads = kStage / 4;
  float xs[kStage], os[kStage];
  for (int64_t q = first_quad; q < first_quad + quads; q += kStageQuads) {
    const int64_t count = std::min(kStageQuads, first_quad + quads - q);
    const int64_t e0 = std::max<int64_t>(0, 4 * q - begin);
    const int64_t e1 = std::min<int64_t>(numel, 4 * (q + count) - begin);
    if (e1 <= e0) continue;
    to_floats(x + e0, xs, e1 - e0);
    add_noise_quads(xs, os, e1 - e0, begin + e0, q, count, seed, offset, amplitude);
    to_halves(os, out + e0, e1 - e0);
  }
}

}  // namespace cpu
}  // namespace wgan_kernels
