// CUDA kernels of the row reductions: grad_norm, norm_penalty, penalty_stats and pair_penalty
// (forward). One kernel reads the data once: segments sum their squares, and each row's norm,
// term and the batch reduction are finished in the same launch (csrc/cuda/rows.cuh).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../penalty.h"
#include "rows.cuh"

namespace wgan_kernels {
namespace cuda {
namespace {

using at::Tensor;

// Sums of squares of x (or of x - y) over each segment. A row whose segment is the whole row and
// whose result is not batch-wide is finished by the segment (finish.row); otherwise segments
// write `partial`, and the last block adds each row's partials in order, calls finish.row per
// row, merges what it returns and calls finish.done once.
template <typename T, bool kDifference, typename Finish>
__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(const T* __restrict__ x, const T* __restrict__ y, Geometry g, bool vectorize,
                       acc_t<T>* __restrict__ partial, unsigned int* counter, Finish finish) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  __shared__ A warp_sums[kThreads / kWarp];
  const Segment s = segment_of(g);
  A total = 0;
  if (s.valid) {
    const T* xr = x + s.row * g.n;
    const T* yr = kDifference ? y + s.row * g.n : nullptr;
    walk(
        xr, vectorize, s.begin, s.end, s.lane, g.tpr,
        [&](int64_t i) {
          A v = static_cast<A>(xr[i]);
          if constexpr (kDifference) v -= static_cast<A>(yr[i]);
          total += v * v;
        },
        [&](int64_t i, int64_t stride, auto count) {
          constexpr int U = decltype(count)::value;
          Vec<T> a[U], b[kDifference ? U : 1];
#pragma unroll
          for (int u = 0; u < U; ++u) {
            a[u] = load_vec(xr + i + u * stride);
            if constexpr (kDifference) b[u] = load_vec(yr + i + u * stride);
          }
          (void)b;
#pragma unroll
          for (int u = 0; u < U; ++u) {
            A sum = 0;
#pragma unroll
            for (int j = 0; j < V; ++j) {
              A v = static_cast<A>(a[u].v[j]);
              if constexpr (kDifference) v -= static_cast<A>(b[u].v[j]);
              sum += v * v;
            }
            total += sum;
          }
        });
  }
  total = segment_sum(total, g.tpr, warp_sums);
  const bool owner = s.valid && s.lane == 0;
  if (counter == nullptr) {
    if (owner) finish.row(s.row, total);
    return;
  }
  if (owner) partial[s.index] = total;
  if (!last_block(counter)) return;
  typename Finish::Acc acc = Finish::Acc::empty();
  for (int64_t row = threadIdx.x; row < g.rows; row += kThreads) {
    A sum = 0;
    for (int64_t c = 0; c < g.chunks; ++c) sum += __ldcg(partial + row * g.chunks + c);
    acc.merge(finish.row(row, sum));
  }
  acc = block_merge(acc);
  if (threadIdx.x == 0) finish.done(acc, g.rows);
}

template <typename T, bool kDifference, typename Finish>
void launch_sum_squares(const Tensor& x, const Tensor& y, bool batch_wide, const Finish& finish) {
  using A = acc_t<T>;
  const Geometry g = geometry(batch_of(x), sample_numel(x));
  const T* xp = x.const_data_ptr<T>();
  const T* yp = kDifference ? y.const_data_ptr<T>() : nullptr;
  Tensor partial, counter;
  if (batch_wide || g.chunks > 1) {
    partial = at::empty({g.segments()}, x.options().dtype(acc_dtype(x.scalar_type())));
    counter = zeroed_counter(x);
  }
  sum_squares_kernel<T, kDifference, Finish><<<grid_size(g.blocks()), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      xp, yp, g, kDifference ? same_alignment({xp, yp}) : true,
      partial.defined() ? partial.mutable_data_ptr<A>() : nullptr,
      counter.defined() ? reinterpret_cast<unsigned int*>(counter.mutable_data_ptr<int>()) : nullptr, finish);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// The loss scale s = scale * grad_scale, read on the device (no host synchronisation).
template <typename A>
struct LossScale {
  const A* tensor;  // nullptr: none
  double scale;
  __device__ double operator()() const { return tensor ? scale * static_cast<double>(*tensor) : scale; }
};

// ---------------------------------------------------------------------------------------
// grad_norm

template <typename A>
struct NormsFinish {
  using Acc = Sum;
  A* norms;
  __device__ Sum row(int64_t i, A sum_squares) const {
    norms[i] = sqrt(sum_squares);
    return {0};
  }
  __device__ void done(const Sum&, int64_t) const {}
};

Tensor grad_norm(const Tensor& grad) {
  check_rows(grad, "grad");
  c10::cuda::CUDAGuard guard(grad.device());
  const Tensor g = as_rows(grad);
  Tensor norms = at::empty({batch_of(g)}, g.options().dtype(acc_dtype(g.scalar_type())));
  if (norms.numel() == 0) return norms;
  WGAN_CUDA_DISPATCH(g.scalar_type(), "grad_norm_cuda", [&] {
    using A = acc_t<scalar_t>;
    launch_sum_squares<scalar_t, false>(g, g, false, NormsFinish<A>{norms.mutable_data_ptr<A>()});
  });
  return norms;
}

// ---------------------------------------------------------------------------------------
// norm_penalty: the norms n_i = ||g_i|| / s, the terms and their reduction in one launch

template <typename A>
struct PenaltyFinish {
  using Acc = Sum;
  A* norms;
  A* out;  // (B,) for 'none', else one value
  PerSample<A> sample_weight;  // data nullptr: none
  LossScale<A> loss_scale;
  double target, weight;
  bool one_sided;
  Reduction reduction;

  __device__ Sum row(int64_t i, A sum_squares) const {
    const A n = static_cast<A>(sqrt(sum_squares) / loss_scale());
    norms[i] = n;
    A term = static_cast<A>(weight * norm_term<A>(n, static_cast<A>(target), one_sided));
    if (sample_weight.data) term *= sample_weight[i];
    if (reduction == Reduction::None) out[i] = term;
    return {static_cast<double>(term)};
  }
  __device__ void done(const Sum& total, int64_t rows) const {
    if (reduction == Reduction::None) return;
    out[0] = static_cast<A>(reduction == Reduction::Mean && rows > 0 ? total.value / rows : total.value);
  }
};

std::tuple<Tensor, Tensor> norm_penalty(const Tensor& grad, const std::optional<Tensor>& grad_scale,
                                        const std::optional<Tensor>& sample_weight, double target, bool one_sided,
                                        double weight, double scale, c10::string_view reduction_name) {
  check_rows(grad, "grad");
  const Reduction reduction = parse_reduction(reduction_name);
  TORCH_CHECK(scale > 0, "grad_scale must be positive, got ", scale);
  c10::cuda::CUDAGuard guard(grad.device());
  const Tensor g = as_rows(grad);
  const int64_t rows = batch_of(g);
  const auto acc_options = g.options().dtype(acc_dtype(g.scalar_type()));
  Tensor norms = at::empty({rows}, acc_options);
  Tensor penalty = reduction == Reduction::None ? at::empty({rows}, acc_options) : at::empty({}, acc_options);
  if (rows == 0) {
    if (reduction != Reduction::None) penalty.zero_();
    return {penalty, norms};
  }
  WGAN_CUDA_DISPATCH(g.scalar_type(), "norm_penalty_cuda", [&] {
    using A = acc_t<scalar_t>;
    const auto loss_scale = device_scalar<A>(grad_scale, g, "grad_scale");
    PerSampleHolder<A> w{Tensor(), {nullptr, 0}};
    if (sample_weight.has_value() && sample_weight->defined()) w = per_sample<A>(*sample_weight, rows, "sample_weight");
    const PenaltyFinish<A> finish{norms.mutable_data_ptr<A>(), penalty.mutable_data_ptr<A>(), w.view,
                                  {loss_scale.data, scale},   target, weight, one_sided, reduction};
    launch_sum_squares<scalar_t, false>(g, g, reduction != Reduction::None, finish);
  });
  return {penalty, norms};
}

// ---------------------------------------------------------------------------------------
// penalty_stats

template <typename A>
struct StatsFinish {
  using Acc = NormSummary;
  A* out;
  LossScale<A> loss_scale;
  double target;

  __device__ NormSummary row(int64_t, A sum_squares) const {
    return NormSummary::of(static_cast<double>(sqrt(sum_squares)) / loss_scale(), target);
  }
  __device__ void done(const NormSummary& summary, int64_t rows) const { summary.write(rows, out); }
};

Tensor penalty_stats(const Tensor& grad, const std::optional<Tensor>& grad_scale, double target, double scale) {
  check_rows(grad, "grad");
  TORCH_CHECK(scale > 0, "grad_scale must be positive, got ", scale);
  c10::cuda::CUDAGuard guard(grad.device());
  const Tensor g = as_rows(grad);
  Tensor stats = at::empty({kNumStats}, g.options().dtype(acc_dtype(g.scalar_type())));
  if (batch_of(g) == 0) return stats.zero_();
  WGAN_CUDA_DISPATCH(g.scalar_type(), "penalty_stats_cuda", [&] {
    using A = acc_t<scalar_t>;
    const auto loss_scale = device_scalar<A>(grad_scale, g, "grad_scale");
    launch_sum_squares<scalar_t, false>(g, g, true,
                                        StatsFinish<A>{stats.mutable_data_ptr<A>(), {loss_scale.data, scale}, target});
  });
  return stats;
}

// ---------------------------------------------------------------------------------------
// pair_penalty (WGAN-LP eq. 7 and 9): distances, terms and their reduction in one launch

template <typename A>
struct PairFinish {
  using Acc = Sum;
  A* dist;
  A* out;
  PerSample<A> f_real, f_fake;
  PairKind kind;
  double weight, p;
  Reduction reduction;

  __device__ Sum row(int64_t i, A sum_squares) const {
    const A d = sqrt(sum_squares);
    dist[i] = d;
    const A term = static_cast<A>(weight * pair_term<A>(kind, f_real[i] - f_fake[i], d, static_cast<A>(p)).value);
    if (reduction == Reduction::None) out[i] = term;
    return {static_cast<double>(term)};
  }
  __device__ void done(const Sum& total, int64_t rows) const {
    if (reduction == Reduction::None) return;
    out[0] = static_cast<A>(reduction == Reduction::Mean && rows > 0 ? total.value / rows : total.value);
  }
};

std::tuple<Tensor, Tensor> pair_penalty(const Tensor& f_real, const Tensor& f_fake, const Tensor& real,
                                        const Tensor& fake, c10::string_view kind_name, double weight, double p,
                                        c10::string_view reduction_name) {
  check_rows(real, "real");
  check_like(real, "real", fake, "fake");
  TORCH_CHECK(f_real.is_floating_point(), "f_real must be a floating-point tensor, got ", f_real.scalar_type());
  TORCH_CHECK(f_fake.is_floating_point(), "f_fake must be a floating-point tensor, got ", f_fake.scalar_type());
  const PairKind kind = parse_pair_kind(kind_name);
  const Reduction reduction = parse_reduction(reduction_name);
  TORCH_CHECK(p > 0, "p must be positive, got ", p);
  c10::cuda::CUDAGuard guard(real.device());
  const Tensor r = as_rows(real), f = matching(fake, r);
  const int64_t rows = batch_of(r);
  const auto acc_options = r.options().dtype(acc_dtype(r.scalar_type()));
  Tensor dist = at::empty({rows}, acc_options);
  Tensor penalty = reduction == Reduction::None ? at::empty({rows}, acc_options) : at::empty({}, acc_options);
  if (rows == 0) {
    if (reduction != Reduction::None) penalty.zero_();
    return {penalty, dist};
  }
  WGAN_CUDA_DISPATCH(r.scalar_type(), "pair_penalty_cuda", [&] {
    using A = acc_t<scalar_t>;
    const auto fr = per_sample<A>(f_real, rows, "f_real");
    const auto ff = per_sample<A>(f_fake, rows, "f_fake");
    const PairFinish<A> finish{dist.mutable_data_ptr<A>(), penalty.mutable_data_ptr<A>(), fr.view, ff.view, kind,
                               weight, p, reduction};
    launch_sum_squares<scalar_t, true>(r, f, reduction != Reduction::None, finish);
  });
  return {penalty, dist};
}

}  // namespace

TORCH_LIBRARY_IMPL(wgan_kernels, CUDA, m) {
  m.impl("grad_norm", &grad_norm);
  m.impl("norm_penalty", &norm_penalty);
  m.impl("penalty_stats", &penalty_stats);
  m.impl("pair_penalty", &pair_penalty);
}

}  // namespace cuda
}  // namespace wgan_kernels
