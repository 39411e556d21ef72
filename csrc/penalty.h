// Per-sample penalty formulas, shared by every device's kernels.
// The specification is wgan_kernels/reference.py; the docs are README.md ("The penalties").
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <cmath>
#include <cstdint>

#include "philox.h"  // WGAN_HOST_DEVICE

namespace wgan_kernels {

enum class Reduction { Mean, Sum, None };
enum class PairKind { Quotient, Transport };

inline Reduction parse_reduction(c10::string_view name) {
  if (name == "mean") return Reduction::Mean;
  if (name == "sum") return Reduction::Sum;
  if (name == "none") return Reduction::None;
  TORCH_CHECK(false, "reduction must be 'mean', 'sum' or 'none', got '", std::string(name), "'");
}

inline PairKind parse_pair_kind(c10::string_view name) {
  if (name == "quotient") return PairKind::Quotient;
  if (name == "transport") return PairKind::Transport;
  TORCH_CHECK(false, "kind must be 'quotient' or 'transport', got '", std::string(name), "'");
}

// (n - target)^2, or max(0, n - target)^2 when one-sided. NaN propagates.
template <typename A>
WGAN_HOST_DEVICE A norm_term(A n, A target, bool one_sided) {
  A d = n - target;
  if (one_sided && d < A(0)) d = A(0);
  return d * d;
}

// d term / d n.
template <typename A>
WGAN_HOST_DEVICE A norm_term_slope(A n, A target, bool one_sided) {
  A d = n - target;
  if (one_sided && d < A(0)) d = A(0);
  return A(2) * d;
}

// One pair's term with its derivatives: d term / d (f(x) - f(y)), and the coefficient c with
// d term / dx = c (x - y) = -d term / dy. r = ||x - y||, the distance is d = r^p.
template <typename A>
struct PairTermT {
  A value, d_df, d_dx;
};

template <typename A>
WGAN_HOST_DEVICE PairTermT<A> pair_term(PairKind kind, A df, A r, A p) {
  if (kind == PairKind::Quotient) {
    if (r == A(0)) return {A(0), A(0), A(0)};  // x == y: no constraint, never NaN
    const A d = std::pow(r, p);
    const A abs_df = std::abs(df);
    A h = abs_df / d - A(1);
    if (h < A(0)) h = A(0);
    const A sign = df > A(0) ? A(1) : (df < A(0) ? A(-1) : A(0));
    const A d_dd = -A(2) * h * abs_df / (d * d);
    return {h * h, A(2) * h * sign / d, d_dd * p * std::pow(r, p - A(2))};
  }
  const A d = r == A(0) ? A(0) : std::pow(r, p);
  A h = df - d;
  if (h < A(0)) h = A(0);
  const A d_dx = r == A(0) ? A(0) : -A(2) * h * p * std::pow(r, p - A(2));
  return {h * h, A(2) * h, d_dx};
}

// penalty_stats layout: one fact, also read by wgan_kernels/reference.py (STAT_NAMES).
constexpr int64_t kNumStats = 6;  // mean, max, min norm, fraction above target, part above, part below

// Running summary of per-sample norms (penalty_stats). merge() combines partial summaries, so
// the CUDA kernel reduces them in a tree; max and min propagate NaN like the reference.
struct NormSummary {
  double sum, max, min, above, part_above, part_below;

  WGAN_HOST_DEVICE static NormSummary empty() { return {0, -INFINITY, INFINITY, 0, 0, 0}; }

  WGAN_HOST_DEVICE static NormSummary of(double n, double target) {
    const double d = n - target;
    const bool is_above = d > 0;
    return {n, n, n, is_above ? 1.0 : 0.0, is_above ? d * d : 0.0, is_above ? 0.0 : d * d};
  }

  WGAN_HOST_DEVICE void merge(const NormSummary& o) {
    sum += o.sum;
    max = (o.max > max || o.max != o.max) ? o.max : max;
    min = (o.min < min || o.min != o.min) ? o.min : min;
    above += o.above;
    part_above += o.part_above;
    part_below += o.part_below;
  }

  template <typename A>
  WGAN_HOST_DEVICE void write(int64_t count, A* out) const {
    const double values[kNumStats] = {sum / count, max, min, above / count, part_above / count, part_below / count};
    for (int64_t k = 0; k < kNumStats; ++k) out[k] = static_cast<A>(values[k]);
  }
};

template <typename A>
void summarize_norms(const A* norms, int64_t count, double inv_scale, double target, A* out) {
  if (count == 0) return;  // all zeros
  NormSummary summary = NormSummary::empty();
  for (int64_t i = 0; i < count; ++i) summary.merge(NormSummary::of(static_cast<double>(norms[i]) * inv_scale, target));
  summary.write(count, out);
}

}  // namespace wgan_kernels
