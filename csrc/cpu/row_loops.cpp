// The row loops declared in rows.h. Each is compiled twice, for AVX2 (x86-64-v3) and for the
// baseline ISA, and the loader picks the clone the CPU supports (GCC/Clang target_clones), so
// one build runs everywhere and still vectorises the float conversions and reductions.
#include <cstring>

#include "rows.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WGAN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define WGAN_CLONES
#endif
#define WGAN_INLINE __attribute__((always_inline)) inline

namespace wgan_kernels {
namespace cpu {
namespace {

constexpr int kLanes = 16;  // independent accumulators: vectorisable without reassociation

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

template <typename T>
WGAN_INLINE acc_t<T> sum_squares_impl(const T* x, int64_t n) {
  using A = acc_t<T>;
  A lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const A v = load(x, i + j);
      lanes[j] += v * v;
    }
  A total = 0;
  for (; i < n; ++i) {
    const A v = load(x, i);
    total += v * v;
  }
  for (int j = 0; j < kLanes; ++j) total += lanes[j];
  return total;
}

template <typename T>
WGAN_INLINE acc_t<T> sum_squared_differences_impl(const T* x, const T* y, int64_t n) {
  using A = acc_t<T>;
  A lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const A v = load(x, i + j) - load(y, i + j);
      lanes[j] += v * v;
    }
  A total = 0;
  for (; i < n; ++i) {
    const A v = load(x, i) - load(y, i);
    total += v * v;
  }
  for (int j = 0; j < kLanes; ++j) total += lanes[j];
  return total;
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
  }

WGAN_DEFINE_ROW_LOOPS(float)
WGAN_DEFINE_ROW_LOOPS(double)
WGAN_DEFINE_ROW_LOOPS(c10::Half)
WGAN_DEFINE_ROW_LOOPS(c10::BFloat16)

}  // namespace cpu
}  // namespace wgan_kernels
