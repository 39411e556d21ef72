// CUDA kernels of the elementwise ops: interpolate and its backward, the backward passes of
// grad_norm, norm_penalty and pair_penalty (one pass each: out = per-row coefficients applied to
// the row), and perturb (a moments pass, then the noise).
//
// Randomness: an int seed gives Philox counter offset 0, so the draws equal the CPU kernels'
// (csrc/philox.h); seed=None takes (seed, offset) from the CUDA generator with
// philox_cuda_state, which stays correct under CUDA graph capture (each replay draws anew).
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <torch/library.h>

#include <c10/util/safe_numerics.h>

#include <array>
#include <limits>
#include <mutex>

#include "../penalty.h"
#include "../philox.h"
#include "rows.cuh"

namespace wgan_kernels {
namespace cuda {
namespace {

using at::Tensor;

// ---------------------------------------------------------------------------------------
// The per-row elementwise kernel

// Up to two inputs and two outputs, all rows of N elements in the same (row-major dense) layout.
template <typename T>
struct RowsIO {
  const T* in[2];
  T* out[2];
};

// For each segment: p = op.row(row, first) (first: the one thread per row that writes the op's
// per-row outputs), then p.apply(inputs, outputs) on every element, in acc_t<T>.
template <typename T, typename Op>
__global__ void __launch_bounds__(kThreads) map_rows_kernel(RowsIO<T> io, Geometry g, bool vectorize, Op op) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  constexpr int In = Op::kInputs, Out = Op::kOutputs;
  const Segment s = segment_of(g);
  if (!s.valid) return;
  const auto p = op.row(s.row, s.begin == 0 && s.lane == 0);
  const int64_t base = s.row * g.n;
  const T* in[In];
  T* out[Out];
#pragma unroll
  for (int k = 0; k < In; ++k) in[k] = io.in[k] + base;
#pragma unroll
  for (int k = 0; k < Out; ++k) out[k] = io.out[k] + base;
  walk(
      in[0], vectorize, s.begin, s.end, s.lane, g.tpr,
      [&](int64_t i) {
        A x[In], y[Out];
#pragma unroll
        for (int k = 0; k < In; ++k) x[k] = static_cast<A>(in[k][i]);
        p.apply(x, y);
#pragma unroll
        for (int k = 0; k < Out; ++k) out[k][i] = static_cast<T>(y[k]);
      },
      [&](int64_t i, int64_t stride, auto count) {
        constexpr int U = decltype(count)::value;
        Vec<T> x[U][In];
#pragma unroll
        for (int u = 0; u < U; ++u)
#pragma unroll
          for (int k = 0; k < In; ++k) x[u][k] = load_vec(in[k] + i + u * stride);
#pragma unroll
        for (int u = 0; u < U; ++u) {
          Vec<T> y[Out];
#pragma unroll
          for (int j = 0; j < V; ++j) {
            A a[In], b[Out];
#pragma unroll
            for (int k = 0; k < In; ++k) a[k] = static_cast<A>(x[u][k].v[j]);
            p.apply(a, b);
#pragma unroll
            for (int k = 0; k < Out; ++k) y[k].v[j] = static_cast<T>(b[k]);
          }
#pragma unroll
          for (int k = 0; k < Out; ++k) store_vec(out[k] + i + u * stride, y[k]);
        }
      });
}

// Runs op over the rows of `inputs` (same layout, row-major dense) into `outputs` (same layout).
template <typename T, typename Op>
void launch_map_rows(std::initializer_list<Tensor> inputs, std::initializer_list<Tensor> outputs, int64_t rows,
                     int64_t n, const Op& op) {
  TORCH_INTERNAL_ASSERT(inputs.size() == Op::kInputs && outputs.size() == Op::kOutputs);
  if (rows == 0) return;
  RowsIO<T> io{{nullptr, nullptr}, {nullptr, nullptr}};
  std::vector<const void*> pointers;
  int k = 0;
  for (const Tensor& t : inputs) pointers.push_back(io.in[k++] = t.const_data_ptr<T>());
  k = 0;
  for (const Tensor& t : outputs) pointers.push_back(io.out[k++] = t.mutable_data_ptr<T>());
  bool vectorize = true;
  for (const void* p : pointers) vectorize = vectorize && same_alignment({pointers[0], p});
  const Geometry g = geometry(rows, n);
  map_rows_kernel<T, Op><<<grid_size(g.blocks()), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(io, g, vectorize,
                                                                                                     op);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------
// Randomness

// (seed, Philox counter offset) of a draw: an int seed selects its fixed stream (offset 0, as on
// the CPU); none takes them from the generator, advancing it, under the generator's mutex.
at::PhiloxCudaState philox_state(const std::optional<int64_t>& seed, const std::optional<at::Generator>& generator,
                                 const Tensor& like) {
  TORCH_CHECK(!(seed.has_value() && generator.has_value() && generator->defined()),
              "pass either seed or generator, not both");
  if (seed.has_value()) return at::PhiloxCudaState(static_cast<uint64_t>(*seed), 0);
  auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(
      generator, at::cuda::detail::getDefaultCUDAGenerator(like.get_device()));
  std::lock_guard<std::mutex> lock(gen->mutex_);
  // Every draw of one call uses the same counter offset (words 2-3), so one step of the
  // generator's offset (rounded up to 4 by PyTorch) keeps successive calls apart.
  return gen->philox_cuda_state(4);
}

// ---------------------------------------------------------------------------------------
// interpolate: x_hat = t real + (1 - t) fake, t_i = philox::interpolation_weight(row_offset + i)

template <typename A>
struct LerpRow {
  A t, u;
  __device__ void apply(const A* x, A* y) const { y[0] = t * x[0] + u * x[1]; }
};

template <typename A>
struct Lerp {
  static constexpr int kInputs = 2, kOutputs = 1;
  at::PhiloxCudaState philox;
  int64_t row_offset;
  float* weights;  // t, written once per row
  __device__ LerpRow<A> row(int64_t i, bool first) const {
    const auto [seed, offset] = at::cuda::philox::unpack(philox);
    const float t = philox::interpolation_weight(static_cast<uint64_t>(row_offset + i), seed, offset);
    if (first) weights[i] = t;
    return {static_cast<A>(t), A(1) - static_cast<A>(t)};
  }
};

// Returns (x_hat, t) with t the (B,) float32 weights.
std::tuple<Tensor, Tensor> interpolate_rows(const Tensor& real, const Tensor& fake, const at::PhiloxCudaState& philox,
                                            int64_t row_offset) {
  check_rows(real, "real");
  check_like(real, "real", fake, "fake");
  c10::cuda::CUDAGuard guard(real.device());
  RowOutput out = row_output_like(real);
  const Tensor r = matching(real, out.work), f = matching(fake, out.work);
  const int64_t rows = batch_of(r), n = sample_numel(r);
  Tensor weights = at::empty({rows}, real.options().dtype(at::kFloat));
  WGAN_CUDA_DISPATCH(r.scalar_type(), "interpolate_cuda", [&] {
    using A = acc_t<scalar_t>;
    launch_map_rows<scalar_t>({r, f}, {out.work}, rows, n,
                              Lerp<A>{philox, row_offset, weights.mutable_data_ptr<float>()});
  });
  out.finish();
  return {out.result, weights};
}

template <typename A>
struct LerpBackwardRow {
  A t, u;
  __device__ void apply(const A* x, A* y) const {
    y[0] = t * x[0];
    y[1] = u * x[0];
  }
};

template <typename A>
struct LerpBackward {
  static constexpr int kInputs = 1, kOutputs = 2;
  PerSample<float> weights;
  __device__ LerpBackwardRow<A> row(int64_t i, bool) const {
    const A t = static_cast<A>(weights[i]);
    return {t, A(1) - t};
  }
};

template <typename A>
struct ScaleRow {
  A c;
  __device__ void apply(const A* x, A* y) const { y[0] = c * x[0]; }
};

// One side of LerpBackward: t g, or (1 - t) g when complement.
template <typename A>
struct LerpBackwardSide {
  static constexpr int kInputs = 1, kOutputs = 1;
  PerSample<float> weights;
  bool complement;
  __device__ ScaleRow<A> row(int64_t i, bool) const {
    const A t = static_cast<A>(weights[i]);
    return {complement ? A(1) - t : t};
  }
};

// (grad_real, grad_fake) = (t grad_out, (1 - t) grad_out) with the forward's t; a gradient not
// asked for by output_mask is undefined and not computed.
std::tuple<Tensor, Tensor> interpolate_backward(const Tensor& grad_out, const Tensor& t,
                                                std::array<bool, 2> output_mask) {
  check_rows(grad_out, "grad_out");
  if (!output_mask[0] && !output_mask[1]) return {};
  c10::cuda::CUDAGuard guard(grad_out.device());
  RowOutput grad_real, grad_fake;
  if (output_mask[0]) grad_real = row_output_like(grad_out);
  if (output_mask[1]) grad_fake = row_output_like(grad_out);
  const Tensor g = matching(grad_out, output_mask[0] ? grad_real.work : grad_fake.work);
  const int64_t rows = batch_of(g), n = sample_numel(g);
  const auto weights = per_sample<float>(t, rows, "t");
  WGAN_CUDA_DISPATCH(g.scalar_type(), "interpolate_backward_cuda", [&] {
    using A = acc_t<scalar_t>;
    if (output_mask[0] && output_mask[1]) {
      launch_map_rows<scalar_t>({g}, {grad_real.work, grad_fake.work}, rows, n, LerpBackward<A>{weights.view});
    } else {
      launch_map_rows<scalar_t>({g}, {output_mask[0] ? grad_real.work : grad_fake.work}, rows, n,
                                LerpBackwardSide<A>{weights.view, !output_mask[0]});
    }
  });
  if (output_mask[0]) grad_real.finish();
  if (output_mask[1]) grad_fake.finish();
  return {grad_real.result, grad_fake.result};
}

// ---------------------------------------------------------------------------------------
// Backward passes of the reductions: out = c_i * grad_i (and the pair gradients)

// grad_norm: d||g||/dg = g / ||g||, taken as 0 at g == 0.
template <typename A>
struct GradNormScale {
  static constexpr int kInputs = 1, kOutputs = 1;
  PerSample<A> upstream, norms;
  __device__ ScaleRow<A> row(int64_t i, bool) const {
    const A n = norms[i];
    return {n == A(0) ? A(0) : upstream[i] / n};
  }
};

Tensor grad_norm_backward(const Tensor& grad_out, const Tensor& grad, const Tensor& norms) {
  check_rows(grad, "grad");
  c10::cuda::CUDAGuard guard(grad.device());
  RowOutput out = row_output_like(grad);
  const Tensor g = matching(grad, out.work);
  const int64_t rows = batch_of(g), n = sample_numel(g);
  WGAN_CUDA_DISPATCH(g.scalar_type(), "grad_norm_backward_cuda", [&] {
    using A = acc_t<scalar_t>;
    const auto up = per_sample<A>(grad_out, rows, "grad_out");
    const auto nm = per_sample<A>(norms, rows, "norms");
    launch_map_rows<scalar_t>({g}, {out.work}, rows, n, GradNormScale<A>{up.view, nm.view});
  });
  out.finish();
  return out.result;
}

// norm_penalty: d term_i / d g_i = w_i term'(n_i) g_i / (n_i s^2) with n_i = ||g_i|| / s; 0 at g_i == 0.
template <typename A>
struct PenaltyScale {
  static constexpr int kInputs = 1, kOutputs = 1;
  PerSample<A> upstream, norms, sample_weight;  // sample_weight.data nullptr: none
  const A* grad_scale;                          // nullptr: none
  double factor, scale, target;                 // factor: weight, divided by B for a mean
  bool one_sided;
  __device__ ScaleRow<A> row(int64_t i, bool) const {
    const double s = grad_scale ? scale * static_cast<double>(*grad_scale) : scale;
    const A n = norms[i];
    A c = static_cast<A>(upstream[i] * factor);
    if (sample_weight.data) c *= sample_weight[i];
    const A slope = norm_term_slope<A>(n, static_cast<A>(target), one_sided);
    return {n == A(0) ? A(0) : static_cast<A>(static_cast<double>(c * slope) / (static_cast<double>(n) * s * s))};
  }
};

Tensor norm_penalty_backward(const Tensor& grad_out, const Tensor& grad, const Tensor& norms,
                             const std::optional<Tensor>& grad_scale, const std::optional<Tensor>& sample_weight,
                             double target, bool one_sided, double weight, double scale,
                             c10::string_view reduction_name) {
  check_rows(grad, "grad");
  const Reduction reduction = parse_reduction(reduction_name);
  TORCH_CHECK(scale > 0, "grad_scale must be positive, got ", scale);
  c10::cuda::CUDAGuard guard(grad.device());
  RowOutput out = row_output_like(grad);
  const Tensor g = matching(grad, out.work);
  const int64_t rows = batch_of(g), n = sample_numel(g);
  if (rows == 0) return out.result;
  WGAN_CUDA_DISPATCH(g.scalar_type(), "norm_penalty_backward_cuda", [&] {
    using A = acc_t<scalar_t>;
    const auto up = per_sample<A>(grad_out, rows, "grad_out", reduction != Reduction::None);
    const auto nm = per_sample<A>(norms, rows, "norms");
    PerSampleHolder<A> w{Tensor(), {nullptr, 0}};
    if (sample_weight.has_value() && sample_weight->defined()) w = per_sample<A>(*sample_weight, rows, "sample_weight");
    const auto loss_scale = device_scalar<A>(grad_scale, g, "grad_scale");
    const double factor = reduction == Reduction::Mean ? weight / rows : weight;
    launch_map_rows<scalar_t>({g}, {out.work}, rows, n,
                              PenaltyScale<A>{up.view, nm.view, w.view, loss_scale.data, factor, scale, target,
                                              one_sided});
  });
  out.finish();
  return out.result;
}

// pair_penalty: d/dreal_i = c_i (real_i - fake_i) = -d/dfake_i; the critic-value gradients are
// written once per row. Outputs = 2: both; 1: c_i (x_i - y_i) for the inputs (x, y) given.
template <typename A, int Outputs>
struct DifferenceRow {
  A c;
  __device__ void apply(const A* x, A* y) const {
    const A v = c * (x[0] - x[1]);
    y[0] = v;
    if constexpr (Outputs == 2) y[1] = -v;
  }
};

template <typename A, int Outputs>
struct PairGradients {
  static constexpr int kInputs = 2, kOutputs = Outputs;
  PerSample<A> upstream, f_real, f_fake, dist;
  A* grad_f_real;  // nullptr: not asked for
  A* grad_f_fake;
  double factor, p;
  PairKind kind;
  __device__ DifferenceRow<A, Outputs> row(int64_t i, bool first) const {
    const A up = static_cast<A>(upstream[i] * factor);
    const auto term = pair_term<A>(kind, f_real[i] - f_fake[i], dist[i], static_cast<A>(p));
    if (first && grad_f_real) grad_f_real[i] = up * term.d_df;
    if (first && grad_f_fake) grad_f_fake[i] = -(up * term.d_df);
    return {up * term.d_dx};
  }
};

// Gradients for (f_real, f_fake, real, fake); one not asked for by output_mask is undefined and
// not computed (the trainer needs only the critic values').
std::tuple<Tensor, Tensor, Tensor, Tensor> pair_penalty_backward(
    const Tensor& grad_out, const Tensor& f_real, const Tensor& f_fake, const Tensor& real, const Tensor& fake,
    const Tensor& dist, c10::string_view kind_name, double weight, double p, c10::string_view reduction_name,
    std::array<bool, 4> output_mask) {
  check_rows(real, "real");
  check_like(real, "real", fake, "fake");
  const PairKind kind = parse_pair_kind(kind_name);
  const Reduction reduction = parse_reduction(reduction_name);
  c10::cuda::CUDAGuard guard(real.device());
  const bool want_real = output_mask[2], want_fake = output_mask[3];
  RowOutput grad_real, grad_fake;
  if (want_real) grad_real = row_output_like(real);
  if (want_fake) grad_fake = row_output_like(real);
  const Tensor& work = want_real ? grad_real.work : (want_fake ? grad_fake.work : real);
  const Tensor r = want_real || want_fake ? matching(real, work) : as_rows(real);
  const Tensor f = matching(fake, r);
  const int64_t rows = batch_of(r), n = want_real || want_fake ? sample_numel(r) : 0;
  const auto acc_options = r.options().dtype(acc_dtype(r.scalar_type()));
  Tensor grad_f_real = output_mask[0] ? at::empty({rows}, acc_options) : Tensor();
  Tensor grad_f_fake = output_mask[1] ? at::empty({rows}, acc_options) : Tensor();
  WGAN_CUDA_DISPATCH(r.scalar_type(), "pair_penalty_backward_cuda", [&] {
    using A = acc_t<scalar_t>;
    const auto up = per_sample<A>(grad_out, rows, "grad_out", reduction != Reduction::None);
    const auto fr = per_sample<A>(f_real, rows, "f_real");
    const auto ff = per_sample<A>(f_fake, rows, "f_fake");
    const auto d = per_sample<A>(dist, rows, "dist");
    const double factor = reduction == Reduction::Mean && rows > 0 ? weight / rows : weight;
    A* gfr = output_mask[0] ? grad_f_real.mutable_data_ptr<A>() : nullptr;
    A* gff = output_mask[1] ? grad_f_fake.mutable_data_ptr<A>() : nullptr;
    const PairGradients<A, 1> one{up.view, fr.view, ff.view, d.view, gfr, gff, factor, p, kind};
    if (want_real && want_fake) {
      launch_map_rows<scalar_t>({r, f}, {grad_real.work, grad_fake.work}, rows, n,
                                PairGradients<A, 2>{up.view, fr.view, ff.view, d.view, gfr, gff, factor, p, kind});
    } else if (want_real) {
      launch_map_rows<scalar_t>({r, f}, {grad_real.work}, rows, n, one);
    } else if (want_fake) {  // c (fake - real) = -c (real - fake)
      launch_map_rows<scalar_t>({f, r}, {grad_fake.work}, rows, n, one);
    } else if (gfr || gff) {  // only the critic values' gradients: rows of no elements
      launch_map_rows<scalar_t>({r, f}, {r}, rows, 0, one);
    }
  });
  if (want_real) grad_real.finish();
  if (want_fake) grad_fake.finish();
  // in the critic values' dtype and shape ((B,) or (B, 1)); a copy only when the dtype differs
  const auto like = [](const Tensor& grad, const Tensor& value) {
    return grad.defined() ? grad.to(value.scalar_type()).reshape(value.sizes()) : grad;
  };
  return {like(grad_f_real, f_real), like(grad_f_fake, f_fake), grad_real.result, grad_fake.result};
}

// ---------------------------------------------------------------------------------------
// perturb: x + scale * std(x) * z, z_e the Philox normal of stream element first_element + e

struct Moments {
  double count, mean, m2;
  __device__ static Moments empty() { return {0, 0, 0}; }
  __device__ void merge(const Moments& o) {  // Chan et al.'s pairwise update
    if (o.count == 0) return;
    if (count == 0) {
      *this = o;
      return;
    }
    const double delta = o.mean - mean, total = count + o.count;
    mean += delta * o.count / total;
    m2 += o.m2 + delta * delta * count * o.count / total;
    count = total;
  }
};

// Each block takes the moments of one kChunk of x in two passes (the second from cache: the
// mean, then the squared deviations); the last block merges them in a tree and writes
// amplitude = scale * std(x).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    moments_kernel(const T* __restrict__ x, int64_t numel, double2* __restrict__ partial, unsigned int* counter,
                   double scale, float* amplitude) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  __shared__ A warp_sums[kThreads / kWarp];
  __shared__ A chunk_mean;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunk;
  const int64_t end = begin + kChunk < numel ? begin + kChunk : numel;
  // pass 1: the mean (mu = 0 selects plain sums); pass 2: squared deviations from it
  A total = 0;
  {
    A sum = 0;
    walk(
        x, true, begin, end, threadIdx.x, kThreads, [&](int64_t i) { sum += static_cast<A>(x[i]); },
        [&](int64_t i, int64_t stride, auto count) {
          constexpr int U = decltype(count)::value;
          Vec<T> a[U];
#pragma unroll
          for (int u = 0; u < U; ++u) a[u] = load_vec(x + i + u * stride);
#pragma unroll
          for (int u = 0; u < U; ++u)
#pragma unroll
            for (int j = 0; j < V; ++j) sum += static_cast<A>(a[u].v[j]);
        });
    sum = segment_sum(sum, kThreads, warp_sums);
    if (threadIdx.x == 0) chunk_mean = sum / static_cast<A>(end - begin);
    __syncthreads();
    const A mu = chunk_mean;
    walk(
        x, true, begin, end, threadIdx.x, kThreads,
        [&](int64_t i) {
          const A d = static_cast<A>(x[i]) - mu;
          total += d * d;
        },
        [&](int64_t i, int64_t stride, auto count) {
          constexpr int U = decltype(count)::value;
          Vec<T> a[U];
#pragma unroll
          for (int u = 0; u < U; ++u) a[u] = load_vec(x + i + u * stride);
#pragma unroll
          for (int u = 0; u < U; ++u)
#pragma unroll
            for (int j = 0; j < V; ++j) {
              const A d = static_cast<A>(a[u].v[j]) - mu;
              total += d * d;
            }
        });
    total = segment_sum(total, kThreads, warp_sums);
    if (threadIdx.x == 0) partial[blockIdx.x] = make_double2(static_cast<double>(mu), static_cast<double>(total));
  }
  if (!last_block(counter)) return;
  Moments acc = Moments::empty();
  for (int64_t c = threadIdx.x; c < gridDim.x; c += kThreads) {
    const double2 m = __ldcg(partial + c);
    const int64_t first = c * kChunk;
    const double count = static_cast<double>(first + kChunk < numel ? kChunk : numel - first);
    acc.merge({count, m.x, m.y});
  }
  acc = block_merge(acc);
  if (threadIdx.x == 0) *amplitude = static_cast<float>(scale * sqrt(acc.m2 / acc.count));
}

template <typename T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};

// One Philox quad per thread: stream elements 4q .. 4q+3, i.e. elements 4q - first_element + k of x.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    noise_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t numel, uint64_t first_element,
                 at::PhiloxCudaState philox, const float* amplitude, bool aligned_quads) {
  using A = acc_t<T>;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const A amp = static_cast<A>(*amplitude);
  const uint64_t first_quad = first_element / 4;
  const uint64_t quads = (first_element + static_cast<uint64_t>(numel) + 3) / 4 - first_quad;
  for (uint64_t q = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x; q < quads;
       q += static_cast<uint64_t>(gridDim.x) * kThreads) {
    float z[4];
    philox::normal4(first_quad + q, seed, offset, z);
    const int64_t e0 = static_cast<int64_t>(4 * (first_quad + q) - first_element);  // may be < 0 for q = 0
    if (aligned_quads && e0 + 4 <= numel) {  // aligned_quads: first_element % 4 == 0, so e0 >= 0
      const Quad<T> in = *reinterpret_cast<const Quad<T>*>(x + e0);
      Quad<T> result;
#pragma unroll
      for (int k = 0; k < 4; ++k) result.v[k] = static_cast<T>(static_cast<A>(in.v[k]) + amp * static_cast<A>(z[k]));
      *reinterpret_cast<Quad<T>*>(out + e0) = result;
    } else {
      for (int k = 0; k < 4; ++k) {
        const int64_t e = e0 + k;
        if (e >= 0 && e < numel) out[e] = static_cast<T>(static_cast<A>(x[e]) + amp * static_cast<A>(z[k]));
      }
    }
  }
}

Tensor perturb_rows(const Tensor& x, double scale, const at::PhiloxCudaState& philox, int64_t row_offset) {
  check_rows(x, "x");
  TORCH_CHECK(scale >= 0, "scale must be non-negative, got ", scale);
  c10::cuda::CUDAGuard guard(x.device());
  // the noise follows the logical element order, so walk x in contiguous order
  const Tensor xc = x.contiguous();
  RowOutput out = {at::empty_like(x), Tensor()};
  out.work = out.result.is_contiguous() ? out.result : at::empty_like(xc);
  const int64_t numel = xc.numel();
  if (numel == 0) return out.result;
  const uint64_t first_element = static_cast<uint64_t>(row_offset) * static_cast<uint64_t>(sample_numel(xc));
  const auto stream = at::cuda::getCurrentCUDAStream();
  WGAN_CUDA_DISPATCH(xc.scalar_type(), "perturb_cuda", [&] {
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    scalar_t* op = out.work.mutable_data_ptr<scalar_t>();
    const int64_t chunks = (numel + kChunk - 1) / kChunk;
    Tensor partial = at::empty({chunks, 2}, xc.options().dtype(at::kDouble));
    Tensor amplitude = at::empty({1}, xc.options().dtype(at::kFloat));
    Tensor counter = zeroed_counter(xc);
    moments_kernel<scalar_t><<<grid_size(chunks), kThreads, 0, stream>>>(
        xp, numel, reinterpret_cast<double2*>(partial.mutable_data_ptr<double>()),
        reinterpret_cast<unsigned int*>(counter.mutable_data_ptr<int>()), scale, amplitude.mutable_data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const uint64_t quads = (first_element + numel + 3) / 4 - first_element / 4;
    const int64_t max_blocks = int64_t{at::cuda::getCurrentDeviceProperties()->multiProcessorCount} * 8;
    const int64_t blocks = std::min<int64_t>((quads + kThreads - 1) / kThreads, max_blocks);
    const uintptr_t quad_bytes = 4 * sizeof(scalar_t);
    const bool aligned_quads = first_element % 4 == 0 && reinterpret_cast<uintptr_t>(xp) % quad_bytes == 0 &&
                               reinterpret_cast<uintptr_t>(op) % quad_bytes == 0;
    noise_kernel<scalar_t><<<grid_size(blocks), kThreads, 0, stream>>>(
        xp, op, numel, first_element, philox, amplitude.const_data_ptr<float>(), aligned_quads);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  out.finish();
  return out.result;
}

// ---------------------------------------------------------------------------------------
// The random ops' schemas: (seed, row_offset, generator) -> the Philox state

void check_row_offset(int64_t row_offset) {
  TORCH_CHECK(row_offset >= 0, "row_offset must be non-negative, got ", row_offset);
}

std::tuple<Tensor, Tensor> interpolate(const Tensor& real, const Tensor& fake, std::optional<int64_t> seed,
                                       int64_t row_offset, std::optional<at::Generator> generator) {
  check_rows(real, "real");
  check_row_offset(row_offset);
  c10::cuda::CUDAGuard guard(real.device());
  return interpolate_rows(real, fake, philox_state(seed, generator, real), row_offset);
}

Tensor perturb(const Tensor& x, double scale, std::optional<int64_t> seed, int64_t row_offset,
               std::optional<at::Generator> generator) {
  check_rows(x, "x");
  check_row_offset(row_offset);
  int64_t begin = 0;
  TORCH_CHECK(!c10::mul_overflows(row_offset, sample_numel(x), &begin) &&
                  begin <= std::numeric_limits<int64_t>::max() - x.numel(),
              "row_offset ", row_offset, " times the sample size ", sample_numel(x), " overflows int64");
  c10::cuda::CUDAGuard guard(x.device());
  return perturb_rows(x, scale, philox_state(seed, generator, x), row_offset);
}

}  // namespace

TORCH_LIBRARY_IMPL(wgan_kernels, CUDA, m) {
  m.impl("interpolate", &interpolate);
  m.impl("interpolate_backward", &interpolate_backward);
  m.impl("perturb", &perturb);
  m.impl("grad_norm_backward", &grad_norm_backward);
  m.impl("norm_penalty_backward", &norm_penalty_backward);
  m.impl("pair_penalty_backward", &pair_penalty_backward);
}

}  // namespace cuda
}  // namespace wgan_kernels
