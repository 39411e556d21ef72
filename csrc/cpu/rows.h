// Per-sample ("row") building blocks of the CPU kernels.
//
// Every op works on B samples of N elements. A tensor whose batch dimension is outermost
// and whose storage is dense (contiguous, channels_last, ...) already holds sample i in
// the memory block [i*N, (i+1)*N), so the kernels walk that memory directly; anything
// else is copied to contiguous first. Reductions accumulate in float32 (float64 for
// float64) with independent lanes so that the compiler vectorises them.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <type_traits>

namespace wgan_kernels {
namespace cpu {

template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

inline at::ScalarType acc_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

inline int64_t batch_of(const at::Tensor& t) { return t.size(0); }

inline int64_t sample_numel(const at::Tensor& t) {
  int64_t n = 1;
  for (int64_t d = 1; d < t.dim(); ++d) n *= t.size(d);
  return n;
}

// True when sample i is the memory block [i*N, (i+1)*N) of t.
inline bool is_row_major_dense(const at::Tensor& t) {
  return t.is_non_overlapping_and_dense() && (t.size(0) <= 1 || t.stride(0) == sample_numel(t));
}

inline at::Tensor as_rows(const at::Tensor& t) {
  return is_row_major_dense(t) ? t : t.contiguous();
}

// Elementwise outputs follow at::empty_like(input) (so the fake kernels are empty_like too).
// The kernel writes into `work`, which is row-major dense; finish() copies it into `result`
// in the rare case where empty_like gave a layout the kernels cannot walk.
struct RowOutput {
  at::Tensor result, work;
  void finish() {
    if (!work.is_same(result)) result.copy_(work);
  }
};

inline RowOutput row_output_like(const at::Tensor& like) {
  at::Tensor out = at::empty_like(like);
  return {out, is_row_major_dense(out) ? out : at::empty(out.sizes(), out.options())};
}

// t in the layout of `work` (a copy only when the layouts differ).
inline at::Tensor matching(const at::Tensor& t, const at::Tensor& work) {
  if (t.strides() == work.strides()) return t;
  return at::empty_like(work, t.options()).copy_(t);
}

// Splits B rows of N elements into tasks of at most kChunk elements and runs
// fn(task, row, begin, end) in parallel; small problems stay on the calling thread.
constexpr int64_t kChunk = int64_t{1} << 15;
constexpr int64_t kMinParallelElements = int64_t{1} << 16;

inline int64_t chunks_per_row(int64_t n) { return std::max<int64_t>(1, (n + kChunk - 1) / kChunk); }

template <typename F>
void for_each_chunk(int64_t rows, int64_t n, const F& fn) {
  const int64_t chunks = chunks_per_row(n);
  const int64_t tasks = rows * chunks;
  const int64_t task_elements = std::max<int64_t>(1, std::min(n, kChunk));
  const int64_t grain = std::max<int64_t>(1, kMinParallelElements / task_elements);
  at::parallel_for(0, tasks, grain, [&](int64_t first, int64_t last) {
    for (int64_t task = first; task < last; ++task) {
      const int64_t row = task / chunks;
      const int64_t begin = (task % chunks) * kChunk;
      fn(task, row, begin, std::min(n, begin + kChunk));
    }
  });
}

// Count, mean and sum of squared deviations of a stream of values, merged chunk by chunk
// (Chan, Golub and LeVeque's pairwise update): a standard deviation in one pass over chunks.
struct Moments {
  double count = 0, mean = 0, m2 = 0;
  void merge(double n, double chunk_mean, double chunk_m2) {
    if (n <= 0) return;
    const double delta = chunk_mean - mean;
    const double total = count + n;
    mean += delta * n / total;
    m2 += chunk_m2 + delta * delta * count * n / total;
    count = total;
  }
};

// The inner loops over one row, compiled for AVX2 and for the baseline ISA and picked at load
// time (row_loops.cpp; c10::Half converts to float buffers and runs the float loops). T is
// float, double, c10::Half or c10::BFloat16; values are accumulated and combined in acc_t<T>.
#define WGAN_ROW_LOOPS(T)                                                                                \
  acc_t<T> sum_squares(const T* x, int64_t n);                                                          \
  acc_t<T> sum_squared_differences(const T* x, const T* y, int64_t n);                                  \
  /* out = c * x */                                                                                     \
  void scale_row(const T* x, acc_t<T> c, T* out, int64_t n);                                            \
  /* out = t * a + (1 - t) * b */                                                                       \
  void lerp_row(const T* a, const T* b, acc_t<T> t, T* out, int64_t n);                                 \
  /* grad_a = t * g, grad_b = (1 - t) * g */                                                            \
  void lerp_backward_row(const T* g, acc_t<T> t, T* grad_a, T* grad_b, int64_t n);                      \
  /* grad_x = c * (x - y), grad_y = -grad_x */                                                          \
  void difference_row(const T* x, const T* y, acc_t<T> c, T* grad_x, T* grad_y, int64_t n);            \
  /* out = c * (x - y): one side of difference_row */                                                   \
  void scaled_difference_row(const T* x, const T* y, acc_t<T> c, T* out, int64_t n);                   \
  /* count, mean and sum of squared deviations of x[0..n), for a standard deviation */                  \
  void moments(const T* x, int64_t n, double* mean, double* m2);                                        \
  /* out[e] = x[e] + amplitude * z_{begin + e} for the e in [0, numel) whose stream element           \
     begin + e lies in quads [first_quad, first_quad + quads); z the perturb stream (philox.h normal4) */ \
  void add_noise_quads(const T* x, T* out, int64_t numel, int64_t begin, int64_t first_quad,            \
                       int64_t quads, uint64_t seed, uint64_t offset, float amplitude);

WGAN_ROW_LOOPS(float)
WGAN_ROW_LOOPS(double)
WGAN_ROW_LOOPS(c10::Half)
WGAN_ROW_LOOPS(c10::BFloat16)
#undef WGAN_ROW_LOOPS

// Per-row sums of squares (of x, or of x - y when y is given) into out[0..rows).
// Partial sums are combined in a fixed order, so results do not depend on the thread count.
template <typename T>
void row_sum_squares(const T* x, const T* y, int64_t rows, int64_t n, acc_t<T>* out) {
  using A = acc_t<T>;
  const int64_t chunks = chunks_per_row(n);
  if (chunks == 1) {
    for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
      const int64_t base = row * n + begin;
      out[row] = y ? sum_squared_differences(x + base, y + base, end - begin)
                   : sum_squares(x + base, end - begin);
    });
    return;
  }
  std::vector<A> partial(static_cast<size_t>(rows * chunks));
  for_each_chunk(rows, n, [&](int64_t task, int64_t row, int64_t begin, int64_t end) {
    const int64_t base = row * n + begin;
    partial[task] = y ? sum_squared_differences(x + base, y + base, end - begin)
                      : sum_squares(x + base, end - begin);
  });
  for (int64_t row = 0; row < rows; ++row) {
    A total = 0;
    for (int64_t c = 0; c < chunks; ++c) total += partial[row * chunks + c];
    out[row] = total;
  }
}

}  // namespace cpu
}  // namespace wgan_kernels
