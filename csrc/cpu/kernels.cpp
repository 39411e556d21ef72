// CPU kernels of the wgan_kernels ops (schemas in csrc/ops.cpp, specification in
// wgan_kernels/reference.py).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <c10/util/safe_numerics.h>

#include <array>
#include <cmath>
#include <limits>
#include <mutex>

#include "../philox.h"
#include "../penalty.h"
#include "rows.h"

namespace wgan_kernels {
namespace cpu {
namespace {

using at::Tensor;

#define WGAN_DISPATCH(TYPE, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, TYPE, NAME, __VA_ARGS__)

void check_floating(const Tensor& t, const char* name) {
  TORCH_CHECK(t.is_floating_point(), name, " must be a floating-point tensor, got ", t.scalar_type());
}

void check_batched(const Tensor& t, const char* name) {
  check_floating(t, name);
  TORCH_CHECK(t.dim() >= 1, name, " must have a batch dimension (dim >= 1), got a 0-dim tensor");
}

void check_same(const Tensor& a, const char* a_name, const Tensor& b, const char* b_name) {
  TORCH_CHECK(a.sizes() == b.sizes(), b_name, " must have the shape of ", a_name, " ", a.sizes(),
              ", got ", b.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), b_name, " must have the dtype of ", a_name, " (",
              a.scalar_type(), "), got ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), b_name, " must be on the device of ", a_name, " (", a.device(),
              "), got ", b.device());
}

// Read-only view of per-sample values: a (B,) vector, a (B, 1) column, or (broadcast) one value.
// Converts only when the dtype differs, so the common call costs no ATen op.
template <typename A>
struct PerSample {
  Tensor holder;
  const A* data;
  int64_t step;
  A operator[](int64_t i) const { return data[i * step]; }
};

template <typename A>
PerSample<A> per_sample(const Tensor& t, int64_t batch, const char* name, bool broadcast_scalar = false) {
  const bool scalar = broadcast_scalar && t.numel() == 1;
  TORCH_CHECK(scalar || (t.numel() == batch && t.dim() >= 1 && t.dim() <= 2 && t.size(0) == batch), name,
              " must have shape (B,) or (B, 1) with B = ", batch, ", got ", t.sizes());
  const at::ScalarType dtype = c10::CppTypeToScalarType<A>::value;
  Tensor values = t.scalar_type() == dtype ? t : t.to(dtype);
  if (values.numel() == 0) return {values, nullptr, 0};
  return {values, values.const_data_ptr<A>(), scalar ? 0 : values.stride(0)};
}

// The loss scale to divide gradients by: a float times an optional one-element tensor.
double loss_scale(double scale, const std::optional<Tensor>& grad_scale) {
  double s = scale;
  if (grad_scale.has_value() && grad_scale->defined()) {
    TORCH_CHECK(grad_scale->numel() == 1, "grad_scale must hold one value, got shape ", grad_scale->sizes());
    s *= grad_scale->item<double>();
  }
  TORCH_CHECK(s > 0, "grad_scale must be positive, got ", s);
  return s;
}

// Writes reduce(terms) into a new tensor: (B,) for 'none', else a 0-dim tensor.
template <typename A>
Tensor reduce_terms(const std::vector<A>& terms, Reduction reduction, const at::TensorOptions& options) {
  const int64_t batch = static_cast<int64_t>(terms.size());
  if (reduction == Reduction::None) {
    Tensor out = at::empty({batch}, options);
    std::copy(terms.begin(), terms.end(), out.mutable_data_ptr<A>());
    return out;
  }
  double total = 0;
  for (const A v : terms) total += v;
  if (reduction == Reduction::Mean && batch > 0) total /= batch;
  Tensor out = at::empty({}, options);
  *out.mutable_data_ptr<A>() = static_cast<A>(total);
  return out;
}

// d loss / d term_i: the upstream gradient times weight (and 1/B for a mean).
template <typename A>
std::vector<A> term_gradients(const Tensor& grad_out, int64_t batch, double weight, Reduction reduction) {
  const auto up = per_sample<A>(grad_out, batch, "grad_out", reduction != Reduction::None);
  const double factor = reduction == Reduction::Mean && batch > 0 ? weight / batch : weight;
  std::vector<A> out(batch);
  for (int64_t i = 0; i < batch; ++i) out[i] = static_cast<A>(up[i] * factor);
  return out;
}

#define WGAN_DISPATCH_ACC(TYPE, NAME, ...) AT_DISPATCH_FLOATING_TYPES(TYPE, NAME, __VA_ARGS__)

// ---------------------------------------------------------------------------------------
// randomness

// The Philox key of a random op: an int seed is its 64-bit word; seed=None draws from
// `generator` (else the default CPU generator) under its mutex. random64() % 2^63 is exactly
// what torch.empty((), dtype=torch.int64).random_(generator=g) draws, and so what the reference
// draws: both backends agree after the same torch.manual_seed.
uint64_t philox_seed(std::optional<int64_t> seed, const std::optional<at::Generator>& generator) {
  const bool has_generator = generator.has_value() && generator->defined();
  TORCH_CHECK(!(seed.has_value() && has_generator), "pass either seed or generator, not both");
  if (seed.has_value()) return static_cast<uint64_t>(*seed);
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->random64() % (uint64_t{1} << 63);
}

void check_row_offset(int64_t row_offset) {
  TORCH_CHECK(row_offset >= 0, "row_offset must be non-negative, got ", row_offset);
}

// ---------------------------------------------------------------------------------------
// interpolate: t_i = interpolation weight row_offset + i of the stream; x_hat_i = t_i real_i + (1 - t_i) fake_i

std::tuple<Tensor, Tensor> interpolate(const Tensor& real, const Tensor& fake, std::optional<int64_t> seed,
                                       int64_t row_offset, std::optional<at::Generator> generator) {
  check_batched(real, "real");
  check_same(real, "real", fake, "fake");
  check_row_offset(row_offset);
  const uint64_t key = philox_seed(seed, generator);
  RowOutput out = row_output_like(real);
  const Tensor r = matching(real, out.work), f = matching(fake, out.work);
  const int64_t rows = batch_of(r), n = sample_numel(r);
  Tensor weights = at::empty({rows}, r.options().dtype(at::kFloat));
  float* wp = weights.mutable_data_ptr<float>();
  philox::interpolation_weights(row_offset, rows, key, /*offset=*/0, wp);
  if (r.numel() == 0) return {out.result, weights};
  WGAN_DISPATCH(r.scalar_type(), "interpolate", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    scalar_t* op = out.work.mutable_data_ptr<scalar_t>();
    for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
      const int64_t at = row * n + begin;
      lerp_row(rp + at, fp + at, static_cast<A>(wp[row]), op + at, end - begin);
    });
  });
  out.finish();
  return {out.result, weights};
}

// grad_real = t g, grad_fake = (1 - t) g; an output not asked for by output_mask is undefined.
std::tuple<Tensor, Tensor> interpolate_backward(const Tensor& grad_out, const Tensor& t,
                                                std::array<bool, 2> output_mask) {
  check_batched(grad_out, "grad_out");
  const int64_t rows = batch_of(grad_out);
  const auto weights = per_sample<float>(t, rows, "t");
  RowOutput grad_real, grad_fake;
  if (output_mask[0]) grad_real = row_output_like(grad_out);
  if (output_mask[1]) grad_fake = row_output_like(grad_out);
  if (!output_mask[0] && !output_mask[1]) return {};
  const Tensor g = matching(grad_out, output_mask[0] ? grad_real.work : grad_fake.work);
  const int64_t n = sample_numel(g);
  if (g.numel() == 0) return {grad_real.result, grad_fake.result};
  WGAN_DISPATCH(g.scalar_type(), "interpolate_backward", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* rp = output_mask[0] ? grad_real.work.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* fp = output_mask[1] ? grad_fake.work.mutable_data_ptr<scalar_t>() : nullptr;
    for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
      const int64_t at = row * n + begin;
      const A w = static_cast<A>(weights[row]);
      if (rp && fp) {
        lerp_backward_row(gp + at, w, rp + at, fp + at, end - begin);
      } else if (rp) {
        scale_row(gp + at, w, rp + at, end - begin);
      } else {
        scale_row(gp + at, A(1) - w, fp + at, end - begin);
      }
    });
  });
  if (output_mask[0]) grad_real.finish();
  if (output_mask[1]) grad_fake.finish();
  return {grad_real.result, grad_fake.result};
}

// ---------------------------------------------------------------------------------------
// perturb: x + scale * std(x) * z; element e (logical row-major position) of x gets stream
// element row_offset * N + e, N the elements per sample.

Tensor perturb(const Tensor& x, double scale, std::optional<int64_t> seed, int64_t row_offset,
               std::optional<at::Generator> generator) {
  check_batched(x, "x");
  TORCH_CHECK(scale >= 0, "scale must be non-negative, got ", scale);
  check_row_offset(row_offset);
  int64_t begin = 0;
  TORCH_CHECK(!c10::mul_overflows(row_offset, sample_numel(x), &begin) &&
                  begin <= std::numeric_limits<int64_t>::max() - x.numel(),
              "row_offset ", row_offset, " times the sample size ", sample_numel(x), " overflows int64");
  const uint64_t key = philox_seed(seed, generator);
  // Noise follows the logical element order, so walk x in contiguous order.
  const Tensor xc = x.contiguous();
  RowOutput out = {at::empty_like(x), at::Tensor()};
  out.work = out.result.is_contiguous() ? out.result : at::empty_like(xc);
  const int64_t numel = xc.numel();
  if (numel == 0) return out.result;
  WGAN_DISPATCH(xc.scalar_type(), "perturb", [&] {
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    scalar_t* op = out.work.mutable_data_ptr<scalar_t>();
    // population standard deviation over all elements: per-chunk moments merged in order
    std::vector<double> means(chunks_per_row(numel)), m2s(chunks_per_row(numel));
    for_each_chunk(1, numel, [&](int64_t task, int64_t, int64_t begin, int64_t end) {
      moments(xp + begin, end - begin, &means[task], &m2s[task]);
    });
    Moments all;
    for (size_t c = 0; c < means.size(); ++c)
      all.merge(static_cast<double>(std::min<int64_t>(kChunk, numel - static_cast<int64_t>(c) * kChunk)), means[c],
                m2s[c]);
    const float amplitude = static_cast<float>(scale * std::sqrt(all.m2 / all.count));
    const int64_t first_quad = begin / 4, quads = (begin + numel - 1) / 4 - first_quad + 1;
    at::parallel_for(0, quads, 4096, [&](int64_t first, int64_t last) {
      add_noise_quads(xp, op, numel, begin, first_quad + first, last - first, key, /*offset=*/0, amplitude);
    });
  });
  out.finish();
  return out.result;
}

// ---------------------------------------------------------------------------------------
// norms and the norm penalty

// Per-sample L2 norms of the rows of g, in the accumulation dtype.
Tensor row_norms(const Tensor& g) {
  const at::ScalarType acc = acc_dtype(g.scalar_type());
  const int64_t rows = batch_of(g), n = sample_numel(g);
  Tensor norms = at::empty({rows}, g.options().dtype(acc));
  if (rows == 0) return norms;
  if (n == 0) return norms.zero_();
  WGAN_DISPATCH(g.scalar_type(), "row_norms", [&] {
    using A = acc_t<scalar_t>;
    A* np = norms.mutable_data_ptr<A>();
    row_sum_squares<scalar_t>(g.const_data_ptr<scalar_t>(), nullptr, rows, n, np);
    for (int64_t i = 0; i < rows; ++i) np[i] = std::sqrt(np[i]);
  });
  return norms;
}

// out_i = coef[i] * grad_i, written in grad's dtype and (empty_like) layout.
template <typename A>
Tensor scale_rows(const Tensor& grad, const A* coef) {
  RowOutput out = row_output_like(grad);
  const Tensor g = matching(grad, out.work);
  const int64_t rows = batch_of(g), n = sample_numel(g);
  if (g.numel() == 0) return out.result;
  WGAN_DISPATCH(g.scalar_type(), "scale_rows", [&] {
    // A is the accumulation type of grad's dtype; the other instantiations are never called.
    if constexpr (std::is_same_v<acc_t<scalar_t>, A>) {
      const scalar_t* gp = g.const_data_ptr<scalar_t>();
      scalar_t* op = out.work.mutable_data_ptr<scalar_t>();
      for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
        const int64_t at = row * n + begin;
        scale_row(gp + at, coef[row], op + at, end - begin);
      });
    } else {
      TORCH_CHECK(false, "internal error: coefficient dtype does not match the accumulation dtype");
    }
  });
  out.finish();
  return out.result;
}

Tensor grad_norm(const Tensor& grad) {
  check_batched(grad, "grad");
  return row_norms(as_rows(grad));
}

Tensor grad_norm_backward(const Tensor& grad_out, const Tensor& grad, const Tensor& norms) {
  check_batched(grad, "grad");
  const int64_t rows = batch_of(grad);
  Tensor result;
  WGAN_DISPATCH_ACC(acc_dtype(grad.scalar_type()), "grad_norm_backward", [&] {
    const auto up = per_sample<scalar_t>(grad_out, rows, "grad_out");
    const auto n = per_sample<scalar_t>(norms, rows, "norms");
    std::vector<scalar_t> coef(rows);
    // d||g||/dg = g / ||g||, taken as 0 at g == 0.
    for (int64_t i = 0; i < rows; ++i) coef[i] = n[i] == 0 ? scalar_t(0) : up[i] / n[i];
    result = scale_rows(grad, coef.data());
  });
  return result;
}

std::tuple<Tensor, Tensor> norm_penalty(const Tensor& grad, const std::optional<Tensor>& grad_scale,
                                        const std::optional<Tensor>& sample_weight, double target,
                                        bool one_sided, double weight, double scale,
                                        c10::string_view reduction_name) {
  check_batched(grad, "grad");
  const Reduction reduction = parse_reduction(reduction_name);
  const double s = loss_scale(scale, grad_scale);
  Tensor norms = row_norms(as_rows(grad));
  const int64_t rows = norms.numel();
  Tensor penalty;
  WGAN_DISPATCH_ACC(norms.scalar_type(), "norm_penalty", [&] {
    scalar_t* np = norms.mutable_data_ptr<scalar_t>();
    std::vector<scalar_t> terms(rows);
    for (int64_t i = 0; i < rows; ++i) {
      np[i] = static_cast<scalar_t>(np[i] / s);
      terms[i] = static_cast<scalar_t>(weight * norm_term<scalar_t>(np[i], static_cast<scalar_t>(target), one_sided));
    }
    if (sample_weight.has_value() && sample_weight->defined()) {
      const auto w = per_sample<scalar_t>(*sample_weight, rows, "sample_weight");
      for (int64_t i = 0; i < rows; ++i) terms[i] *= w[i];
    }
    penalty = reduce_terms(terms, reduction, norms.options());
  });
  return {penalty, norms};
}

Tensor norm_penalty_backward(const Tensor& grad_out, const Tensor& grad, const Tensor& norms,
                             const std::optional<Tensor>& grad_scale, const std::optional<Tensor>& sample_weight,
                             double target, bool one_sided, double weight, double scale,
                             c10::string_view reduction_name) {
  check_batched(grad, "grad");
  const Reduction reduction = parse_reduction(reduction_name);
  const double s = loss_scale(scale, grad_scale);
  const int64_t rows = batch_of(grad);
  Tensor result;
  WGAN_DISPATCH_ACC(acc_dtype(grad.scalar_type()), "norm_penalty_backward", [&] {
    std::vector<scalar_t> coef = term_gradients<scalar_t>(grad_out, rows, weight, reduction);
    if (sample_weight.has_value() && sample_weight->defined()) {
      const auto w = per_sample<scalar_t>(*sample_weight, rows, "sample_weight");
      for (int64_t i = 0; i < rows; ++i) coef[i] *= w[i];
    }
    const auto n = per_sample<scalar_t>(norms, rows, "norms");
    for (int64_t i = 0; i < rows; ++i) {
      // n = ||g|| / s, so dn/dg = g / (n s^2); the subgradient at g == 0 is 0 (finite, never NaN).
      const scalar_t slope = norm_term_slope<scalar_t>(n[i], static_cast<scalar_t>(target), one_sided);
      coef[i] = n[i] == 0 ? scalar_t(0) : static_cast<scalar_t>(coef[i] * slope / (n[i] * s * s));
    }
    result = scale_rows(grad, coef.data());
  });
  return result;
}

Tensor penalty_stats(const Tensor& grad, const std::optional<Tensor>& grad_scale, double target, double scale) {
  check_batched(grad, "grad");
  const double s = loss_scale(scale, grad_scale);
  const Tensor norms = row_norms(as_rows(grad));
  Tensor stats = at::zeros({kNumStats}, norms.options());
  WGAN_DISPATCH_ACC(norms.scalar_type(), "penalty_stats", [&] {
    summarize_norms(norms.const_data_ptr<scalar_t>(), norms.numel(), 1.0 / s, target,
                    stats.mutable_data_ptr<scalar_t>());
  });
  return stats;
}

// ---------------------------------------------------------------------------------------
// pair penalties (WGAN-LP eq. 7 and 9)

std::tuple<Tensor, Tensor> pair_penalty(const Tensor& f_real, const Tensor& f_fake, const Tensor& real,
                                        const Tensor& fake, c10::string_view kind_name, double weight, double p,
                                        c10::string_view reduction_name) {
  check_batched(real, "real");
  check_same(real, "real", fake, "fake");
  check_floating(f_real, "f_real");
  check_floating(f_fake, "f_fake");
  const PairKind kind = parse_pair_kind(kind_name);
  const Reduction reduction = parse_reduction(reduction_name);
  TORCH_CHECK(p > 0, "p must be positive, got ", p);
  const Tensor r = as_rows(real), f = matching(fake, r);
  const int64_t rows = batch_of(r), n = sample_numel(r);
  Tensor dist = at::zeros({rows}, r.options().dtype(acc_dtype(r.scalar_type())));
  if (rows > 0 && n > 0) {
    WGAN_DISPATCH(r.scalar_type(), "pair_distance", [&] {
      using A = acc_t<scalar_t>;
      A* dp = dist.mutable_data_ptr<A>();
      row_sum_squares<scalar_t>(r.const_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(), rows, n, dp);
      for (int64_t i = 0; i < rows; ++i) dp[i] = std::sqrt(dp[i]);
    });
  }
  Tensor penalty;
  WGAN_DISPATCH_ACC(dist.scalar_type(), "pair_penalty", [&] {
    const auto fr = per_sample<scalar_t>(f_real, rows, "f_real");
    const auto ff = per_sample<scalar_t>(f_fake, rows, "f_fake");
    const scalar_t* dp = dist.const_data_ptr<scalar_t>();
    std::vector<scalar_t> terms(rows);
    for (int64_t i = 0; i < rows; ++i)
      terms[i] = static_cast<scalar_t>(weight * pair_term<scalar_t>(kind, fr[i] - ff[i], dp[i], static_cast<scalar_t>(p)).value);
    penalty = reduce_terms(terms, reduction, dist.options());
  });
  return {penalty, dist};
}

// Gradients for (f_real, f_fake, real, fake); an output not asked for by output_mask is
// undefined and costs nothing (the trainer needs only the critic values' gradients).
std::tuple<Tensor, Tensor, Tensor, Tensor> pair_penalty_backward(
    const Tensor& grad_out, const Tensor& f_real, const Tensor& f_fake, const Tensor& real, const Tensor& fake,
    const Tensor& dist, c10::string_view kind_name, double weight, double p, c10::string_view reduction_name,
    std::array<bool, 4> output_mask) {
  check_batched(real, "real");
  check_same(real, "real", fake, "fake");
  const PairKind kind = parse_pair_kind(kind_name);
  const Reduction reduction = parse_reduction(reduction_name);
  const bool want_real = output_mask[2], want_fake = output_mask[3];
  RowOutput grad_real, grad_fake;
  if (want_real) grad_real = row_output_like(real);
  if (want_fake) grad_fake = row_output_like(real);
  Tensor grad_f_real = output_mask[0] ? at::empty(f_real.sizes(), f_real.options()) : Tensor();
  Tensor grad_f_fake = output_mask[1] ? at::empty(f_fake.sizes(), f_fake.options()) : Tensor();
  const int64_t rows = batch_of(real), n = sample_numel(real);
  WGAN_DISPATCH_ACC(acc_dtype(real.scalar_type()), "pair_penalty_backward", [&] {
    using A = scalar_t;
    const std::vector<A> up = term_gradients<A>(grad_out, rows, weight, reduction);
    const auto fr = per_sample<A>(f_real, rows, "f_real");
    const auto ff = per_sample<A>(f_fake, rows, "f_fake");
    const auto d = per_sample<A>(dist, rows, "dist");
    std::vector<A> df_coef(rows), dx_coef(rows);  // dL/df_real_i; dL/dreal_i = dx_coef_i * (real_i - fake_i)
    for (int64_t i = 0; i < rows; ++i) {
      const auto term = pair_term<A>(kind, fr[i] - ff[i], d[i], static_cast<A>(p));
      df_coef[i] = up[i] * term.d_df;
      dx_coef[i] = up[i] * term.d_dx;
    }
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f_real.scalar_type(), "pair_f_grads", [&] {
      scalar_t* gr = output_mask[0] ? grad_f_real.mutable_data_ptr<scalar_t>() : nullptr;
      for (int64_t i = 0; gr && i < rows; ++i) gr[i] = static_cast<scalar_t>(df_coef[i]);
    });
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f_fake.scalar_type(), "pair_f_grads", [&] {
      scalar_t* gf = output_mask[1] ? grad_f_fake.mutable_data_ptr<scalar_t>() : nullptr;
      for (int64_t i = 0; gf && i < rows; ++i) gf[i] = static_cast<scalar_t>(-df_coef[i]);
    });
    if (!(want_real || want_fake) || real.numel() == 0) return;
    const Tensor& work = want_real ? grad_real.work : grad_fake.work;
    const Tensor r = matching(real, work), f = matching(fake, work);
    WGAN_DISPATCH(r.scalar_type(), "pair_x_grads", [&] {
      using S = acc_t<scalar_t>;
      const scalar_t *xp = r.const_data_ptr<scalar_t>(), *yp = f.const_data_ptr<scalar_t>();
      scalar_t* gx = want_real ? grad_real.work.mutable_data_ptr<scalar_t>() : nullptr;
      scalar_t* gy = want_fake ? grad_fake.work.mutable_data_ptr<scalar_t>() : nullptr;
      for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
        const int64_t at = row * n + begin;
        const S c = static_cast<S>(dx_coef[row]);
        if (gx && gy) {
          difference_row(xp + at, yp + at, c, gx + at, gy + at, end - begin);
        } else if (gx) {
          scaled_difference_row(xp + at, yp + at, c, gx + at, end - begin);
        } else {
          scaled_difference_row(yp + at, xp + at, c, gy + at, end - begin);  // c (y - x) = -c (x - y)
        }
      });
    });
  });
  if (want_real) grad_real.finish();
  if (want_fake) grad_fake.finish();
  return {grad_f_real, grad_f_fake, grad_real.result, grad_fake.result};
}

}  // namespace

TORCH_LIBRARY_IMPL(wgan_kernels, CPU, m) {
  m.impl("interpolate", &interpolate);
  m.impl("interpolate_backward", &interpolate_backward);
  m.impl("perturb", &perturb);
  m.impl("grad_norm", &grad_norm);
  m.impl("grad_norm_backward", &grad_norm_backward);
  m.impl("norm_penalty", &norm_penalty);
  m.impl("norm_penalty_backward", &norm_penalty_backward);
  m.impl("penalty_stats", &penalty_stats);
  m.impl("pair_penalty", &pair_penalty);
  m.impl("pair_penalty_backward", &pair_penalty_backward);
}

}  // namespace cpu
}  // namespace wgan_kernels
