// CPU kernels of the wgan_kernels ops (schemas in csrc/ops.cpp, specification in
// wgan_kernels/reference.py).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <limits>

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

// A (B,) vector (or (B, 1) column) as contiguous values of dtype `dtype`.
Tensor per_sample(const Tensor& t, int64_t batch, at::ScalarType dtype, const char* name) {
  TORCH_CHECK(t.numel() == batch && t.dim() >= 1 && t.dim() <= 2 && t.size(0) == batch, name,
              " must have shape (B,) or (B, 1) with B = ", batch, ", got ", t.sizes());
  return t.reshape({batch}).to(dtype).contiguous();
}

// The loss scale to divide gradients by: a float times an optional 0-dim tensor.
double loss_scale(double scale, const std::optional<Tensor>& grad_scale) {
  double s = scale;
  if (grad_scale.has_value() && grad_scale->defined()) {
    TORCH_CHECK(grad_scale->numel() == 1, "grad_scale must hold one value, got shape ", grad_scale->sizes());
    s *= grad_scale->item<double>();
  }
  TORCH_CHECK(s > 0, "grad_scale must be positive, got ", s);
  return s;
}

Tensor reduce_terms(const Tensor& terms, Reduction reduction) {
  switch (reduction) {
    case Reduction::None: return terms;
    case Reduction::Sum: return terms.sum();
    case Reduction::Mean: return terms.numel() ? terms.sum() / terms.numel() : terms.sum();
  }
  return terms;
}

// Per-sample upstream gradient of the reduced penalty, times `weight` (and 1/B for a mean).
Tensor upstream_per_sample(const Tensor& grad_out, int64_t batch, double weight, Reduction reduction,
                           at::ScalarType dtype) {
  Tensor up = grad_out.to(dtype);
  if (reduction == Reduction::None) {
    TORCH_CHECK(up.numel() == batch, "grad_out must have ", batch, " elements, got ", up.numel());
    up = up.reshape({batch});
  } else {
    up = up.reshape({1}).expand({batch});
  }
  const double factor = reduction == Reduction::Mean && batch > 0 ? weight / batch : weight;
  return (up * factor).contiguous();
}

// ---------------------------------------------------------------------------------------
// interpolate

Tensor interpolate(const Tensor& real, const Tensor& fake, int64_t seed, int64_t offset) {
  check_batched(real, "real");
  check_same(real, "real", fake, "fake");
  RowOutput out = row_output_like(real);
  const Tensor r = matching(real, out.work), f = matching(fake, out.work);
  const int64_t rows = batch_of(r), n = sample_numel(r);
  if (r.numel() == 0) return out.result;
  WGAN_DISPATCH(r.scalar_type(), "interpolate", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    const scalar_t* fp = f.const_data_ptr<scalar_t>();
    scalar_t* op = out.work.mutable_data_ptr<scalar_t>();
    for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
      const A t = philox::interpolation_weight(row, seed, offset);
      const A u = A(1) - t;
      const int64_t base = row * n;
      for (int64_t j = base + begin; j < base + end; ++j)
        op[j] = static_cast<scalar_t>(t * static_cast<A>(rp[j]) + u * static_cast<A>(fp[j]));
    });
  });
  out.finish();
  return out.result;
}

std::tuple<Tensor, Tensor> interpolate_backward(const Tensor& grad_out, int64_t seed, int64_t offset) {
  check_batched(grad_out, "grad_out");
  RowOutput grad_real = row_output_like(grad_out), grad_fake = row_output_like(grad_out);
  const Tensor g = matching(grad_out, grad_real.work);
  const int64_t rows = batch_of(g), n = sample_numel(g);
  if (g.numel() == 0) return {grad_real.result, grad_fake.result};
  WGAN_DISPATCH(g.scalar_type(), "interpolate_backward", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* rp = grad_real.work.mutable_data_ptr<scalar_t>();
    scalar_t* fp = grad_fake.work.mutable_data_ptr<scalar_t>();
    for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
      const A t = philox::interpolation_weight(row, seed, offset);
      const A u = A(1) - t;
      const int64_t base = row * n;
      for (int64_t j = base + begin; j < base + end; ++j) {
        const A v = static_cast<A>(gp[j]);
        rp[j] = static_cast<scalar_t>(t * v);
        fp[j] = static_cast<scalar_t>(u * v);
      }
    });
  });
  grad_real.finish();
  grad_fake.finish();
  return {grad_real.result, grad_fake.result};
}

// ---------------------------------------------------------------------------------------
// perturb: x + scale * std(x) * z, z ~ N(0, 1) indexed by the element's logical position.

Tensor perturb(const Tensor& x, double scale, int64_t seed, int64_t offset) {
  check_batched(x, "x");
  TORCH_CHECK(scale >= 0, "scale must be non-negative, got ", scale);
  // Noise follows the logical element order, so walk x in contiguous order.
  const Tensor xc = x.contiguous();
  RowOutput out = {at::empty_like(x), at::Tensor()};
  out.work = out.result.is_contiguous() ? out.result : at::empty_like(xc);
  const int64_t numel = xc.numel();
  if (numel == 0) return out.result;
  const double sigma =
      at::std(xc.to(acc_dtype(xc.scalar_type())), at::OptionalIntArrayRef{}, /*correction=*/0, false)
          .item<double>();
  WGAN_DISPATCH(xc.scalar_type(), "perturb", [&] {
    using A = acc_t<scalar_t>;
    const A amplitude = static_cast<A>(scale * sigma);
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    scalar_t* op = out.work.mutable_data_ptr<scalar_t>();
    const int64_t quads = (numel + 3) / 4;
    at::parallel_for(0, quads, 2048, [&](int64_t first, int64_t last) {
      float z[4];
      for (int64_t q = first; q < last; ++q) {
        philox::normal4(q, seed, offset, z);
        const int64_t end = std::min<int64_t>(numel, 4 * q + 4);
        for (int64_t e = 4 * q; e < end; ++e)
          op[e] = static_cast<scalar_t>(static_cast<A>(xp[e]) + amplitude * static_cast<A>(z[e - 4 * q]));
      }
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

// out_i = coef_i * grad_i, written in grad's dtype and (empty_like) layout.
Tensor scale_rows(const Tensor& grad, const Tensor& coef) {
  RowOutput out = row_output_like(grad);
  const Tensor g = matching(grad, out.work);
  const int64_t rows = batch_of(g), n = sample_numel(g);
  if (g.numel() == 0) return out.result;
  WGAN_DISPATCH(g.scalar_type(), "scale_rows", [&] {
    using A = acc_t<scalar_t>;
    const A* cp = coef.const_data_ptr<A>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* op = out.work.mutable_data_ptr<scalar_t>();
    for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
      const A c = cp[row];
      const int64_t base = row * n;
      for (int64_t j = base + begin; j < base + end; ++j) op[j] = static_cast<scalar_t>(c * static_cast<A>(gp[j]));
    });
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
  const at::ScalarType acc = acc_dtype(grad.scalar_type());
  const Tensor up = per_sample(grad_out, rows, acc, "grad_out");
  const Tensor n = per_sample(norms, rows, acc, "norms");
  // d||g||/dg = g / ||g||, taken as 0 at g == 0.
  const Tensor coef = at::where(n > 0, up / n, at::zeros({}, up.options())).contiguous();
  return scale_rows(grad, coef);
}

std::tuple<Tensor, Tensor> norm_penalty(const Tensor& grad, const std::optional<Tensor>& grad_scale,
                                        const std::optional<Tensor>& sample_weight, double target,
                                        bool one_sided, double weight, double scale,
                                        c10::string_view reduction_name) {
  check_batched(grad, "grad");
  const Reduction reduction = parse_reduction(reduction_name);
  const double s = loss_scale(scale, grad_scale);
  const Tensor norms = row_norms(as_rows(grad));
  const int64_t rows = norms.numel();
  if (s != 1.0) norms.div_(s);
  Tensor terms = at::empty_like(norms);
  WGAN_DISPATCH(norms.scalar_type(), "norm_penalty_terms", [&] {
    const scalar_t* np = norms.const_data_ptr<scalar_t>();
    scalar_t* tp = terms.mutable_data_ptr<scalar_t>();
    for (int64_t i = 0; i < rows; ++i) tp[i] = static_cast<scalar_t>(weight * norm_term<scalar_t>(np[i], static_cast<scalar_t>(target), one_sided));
  });
  if (sample_weight.has_value() && sample_weight->defined())
    terms.mul_(per_sample(*sample_weight, rows, terms.scalar_type(), "sample_weight"));
  return {reduce_terms(terms, reduction), norms};
}

Tensor norm_penalty_backward(const Tensor& grad_out, const Tensor& grad, const Tensor& norms,
                             const std::optional<Tensor>& grad_scale, const std::optional<Tensor>& sample_weight,
                             double target, bool one_sided, double weight, double scale,
                             c10::string_view reduction_name) {
  check_batched(grad, "grad");
  const Reduction reduction = parse_reduction(reduction_name);
  const double s = loss_scale(scale, grad_scale);
  const int64_t rows = batch_of(grad);
  const at::ScalarType acc = acc_dtype(grad.scalar_type());
  Tensor coef = upstream_per_sample(grad_out, rows, weight, reduction, acc);
  if (sample_weight.has_value() && sample_weight->defined())
    coef.mul_(per_sample(*sample_weight, rows, acc, "sample_weight"));
  const Tensor n = per_sample(norms, rows, acc, "norms");
  AT_DISPATCH_FLOATING_TYPES(acc, "norm_penalty_backward_coef", [&] {
    const scalar_t* np = n.const_data_ptr<scalar_t>();
    scalar_t* cp = coef.mutable_data_ptr<scalar_t>();
    // n = ||g|| / s, so dn/dg = g / (n s^2).
    for (int64_t i = 0; i < rows; ++i)
      cp[i] = static_cast<scalar_t>(cp[i] * norm_term_slope<scalar_t>(np[i], static_cast<scalar_t>(target), one_sided) / (np[i] * s * s));
    for (int64_t i = 0; i < rows; ++i)
      if (np[i] == 0) cp[i] = 0;  // subgradient 0 at g == 0: finite, never NaN
  });
  return scale_rows(grad, coef);
}

Tensor penalty_stats(const Tensor& grad, const std::optional<Tensor>& grad_scale, double target, double scale) {
  check_batched(grad, "grad");
  const double s = loss_scale(scale, grad_scale);
  const Tensor norms = row_norms(as_rows(grad));
  Tensor stats = at::zeros({kNumStats}, norms.options());
  AT_DISPATCH_FLOATING_TYPES(norms.scalar_type(), "penalty_stats", [&] {
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
  const at::ScalarType acc = acc_dtype(r.scalar_type());
  const Tensor fr = per_sample(f_real, rows, acc, "f_real");
  const Tensor ff = per_sample(f_fake, rows, acc, "f_fake");
  Tensor dist = at::zeros({rows}, r.options().dtype(acc));
  if (rows > 0 && n > 0) {
    WGAN_DISPATCH(r.scalar_type(), "pair_distance", [&] {
      using A = acc_t<scalar_t>;
      A* dp = dist.mutable_data_ptr<A>();
      row_sum_squares<scalar_t>(r.const_data_ptr<scalar_t>(), f.const_data_ptr<scalar_t>(), rows, n, dp);
      for (int64_t i = 0; i < rows; ++i) dp[i] = std::sqrt(dp[i]);
    });
  }
  Tensor terms = at::empty({rows}, dist.options());
  AT_DISPATCH_FLOATING_TYPES(acc, "pair_penalty_terms", [&] {
    const scalar_t *dp = dist.const_data_ptr<scalar_t>(), *rp = fr.const_data_ptr<scalar_t>(),
                   *fp = ff.const_data_ptr<scalar_t>();
    scalar_t* tp = terms.mutable_data_ptr<scalar_t>();
    for (int64_t i = 0; i < rows; ++i)
      tp[i] = static_cast<scalar_t>(weight * pair_term<scalar_t>(kind, rp[i] - fp[i], dp[i], static_cast<scalar_t>(p)).value);
  });
  return {reduce_terms(terms, reduction), dist};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> pair_penalty_backward(
    const Tensor& grad_out, const Tensor& f_real, const Tensor& f_fake, const Tensor& real, const Tensor& fake,
    const Tensor& dist, c10::string_view kind_name, double weight, double p, c10::string_view reduction_name) {
  check_batched(real, "real");
  check_same(real, "real", fake, "fake");
  const PairKind kind = parse_pair_kind(kind_name);
  const Reduction reduction = parse_reduction(reduction_name);
  RowOutput grad_real = row_output_like(real), grad_fake = row_output_like(real);
  const Tensor r = matching(real, grad_real.work), f = matching(fake, grad_real.work);
  const int64_t rows = batch_of(r), n = sample_numel(r);
  const at::ScalarType acc = acc_dtype(r.scalar_type());
  const Tensor up = upstream_per_sample(grad_out, rows, weight, reduction, acc);
  const Tensor fr = per_sample(f_real, rows, acc, "f_real");
  const Tensor ff = per_sample(f_fake, rows, acc, "f_fake");
  const Tensor d = per_sample(dist, rows, acc, "dist");
  Tensor df_coef = at::empty({rows}, up.options());  // dL/df_real = -dL/df_fake
  Tensor dx_coef = at::empty({rows}, up.options());  // dL/dreal_i = dx_coef_i * (real_i - fake_i)
  AT_DISPATCH_FLOATING_TYPES(acc, "pair_penalty_backward_coef", [&] {
    const scalar_t *upp = up.const_data_ptr<scalar_t>(), *dp = d.const_data_ptr<scalar_t>(),
                   *rp = fr.const_data_ptr<scalar_t>(), *fp = ff.const_data_ptr<scalar_t>();
    scalar_t *ap = df_coef.mutable_data_ptr<scalar_t>(), *kp = dx_coef.mutable_data_ptr<scalar_t>();
    for (int64_t i = 0; i < rows; ++i) {
      const auto term = pair_term<scalar_t>(kind, rp[i] - fp[i], dp[i], static_cast<scalar_t>(p));
      ap[i] = static_cast<scalar_t>(upp[i] * term.d_df);
      kp[i] = static_cast<scalar_t>(upp[i] * term.d_dx);
    }
  });
  if (r.numel() > 0) {
    WGAN_DISPATCH(r.scalar_type(), "pair_penalty_backward", [&] {
      using A = acc_t<scalar_t>;
      const A* kp = dx_coef.const_data_ptr<A>();
      const scalar_t *xp = r.const_data_ptr<scalar_t>(), *yp = f.const_data_ptr<scalar_t>();
      scalar_t *gx = grad_real.work.mutable_data_ptr<scalar_t>(), *gy = grad_fake.work.mutable_data_ptr<scalar_t>();
      for_each_chunk(rows, n, [&](int64_t, int64_t row, int64_t begin, int64_t end) {
        const A k = kp[row];
        const int64_t base = row * n;
        for (int64_t j = base + begin; j < base + end; ++j) {
          const A v = k * (static_cast<A>(xp[j]) - static_cast<A>(yp[j]));
          gx[j] = static_cast<scalar_t>(v);
          gy[j] = static_cast<scalar_t>(-v);
        }
      });
    });
  }
  grad_real.finish();
  grad_fake.finish();
  return {df_coef.reshape(f_real.sizes()).to(f_real.scalar_type()),
          df_coef.neg().reshape(f_fake.sizes()).to(f_fake.scalar_type()), grad_real.result, grad_fake.result};
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
