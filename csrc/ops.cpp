// Op schemas, autograd kernels and the Python module of wgan_kernels.
//
// Every op is defined once here; each device registers its kernels for the same schemas
// (csrc/cpu/kernels.cpp, later csrc/cuda/). The forward ops are differentiable through the
// Autograd kernels below; backward kernels are ops too. The Autograd kernels enter the
// autograd machinery only when an input requires grad, which keeps plain calls cheap.
// Fake (meta) kernels for torch.compile live in wgan_kernels/_ops.py.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/extension.h>
#include <torch/library.h>

#include <mutex>

namespace wgan_kernels {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = std::optional<Tensor>;

TORCH_LIBRARY(wgan_kernels, m) {
  m.def("interpolate(Tensor real, Tensor fake, int seed, int offset) -> Tensor");
  m.def("interpolate_backward(Tensor grad_out, int seed, int offset) -> (Tensor, Tensor)");
  m.def("perturb(Tensor x, float scale, int seed, int offset) -> Tensor");
  m.def("grad_norm(Tensor grad) -> Tensor");
  m.def("grad_norm_backward(Tensor grad_out, Tensor grad, Tensor norms) -> Tensor");
  // Returns (penalty, per-sample unscaled norms); the norms are saved for the backward.
  m.def(
      "norm_penalty(Tensor grad, Tensor? grad_scale, Tensor? sample_weight, float target, bool one_sided, "
      "float weight, float scale, str reduction) -> (Tensor, Tensor)");
  m.def(
      "norm_penalty_backward(Tensor grad_out, Tensor grad, Tensor norms, Tensor? grad_scale, "
      "Tensor? sample_weight, float target, bool one_sided, float weight, float scale, str reduction) -> Tensor");
  m.def("penalty_stats(Tensor grad, Tensor? grad_scale, float target, float scale) -> Tensor");
  // Returns (penalty, per-pair distances ||real_i - fake_i||); the distances are saved for the backward.
  m.def(
      "pair_penalty(Tensor f_real, Tensor f_fake, Tensor real, Tensor fake, str kind, float weight, float p, "
      "str reduction) -> (Tensor, Tensor)");
  m.def(
      "pair_penalty_backward(Tensor grad_out, Tensor f_real, Tensor f_fake, Tensor real, Tensor fake, "
      "Tensor dist, str kind, float weight, float p, str reduction) -> (Tensor, Tensor, Tensor, Tensor)");
}

template <typename Signature>
c10::TypedOperatorHandle<Signature> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

bool needs_grad(std::initializer_list<const Tensor*> tensors) {
  if (!at::GradMode::is_enabled()) return false;
  for (const Tensor* t : tensors)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

// ---------------------------------------------------------------------------------------

using InterpolateSig = Tensor(const Tensor&, const Tensor&, int64_t, int64_t);
using InterpolateBackwardSig = std::tuple<Tensor, Tensor>(const Tensor&, int64_t, int64_t);

struct InterpolateFunction : public torch::autograd::Function<InterpolateFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& real, const Tensor& fake, int64_t seed, int64_t offset) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["offset"] = offset;
    static auto impl = op<InterpolateSig>("wgan_kernels::interpolate");
    return impl.call(real, fake, seed, offset);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto impl = op<InterpolateBackwardSig>("wgan_kernels::interpolate_backward");
    auto [grad_real, grad_fake] =
        impl.call(grads[0], ctx->saved_data["seed"].toInt(), ctx->saved_data["offset"].toInt());
    return {grad_real, grad_fake, Tensor(), Tensor()};
  }
};

Tensor interpolate_autograd(const Tensor& real, const Tensor& fake, int64_t seed, int64_t offset) {
  if (needs_grad({&real, &fake})) return InterpolateFunction::apply(real, fake, seed, offset);
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto impl = op<InterpolateSig>("wgan_kernels::interpolate");
  return impl.call(real, fake, seed, offset);
}

// ---------------------------------------------------------------------------------------
// perturb: the noise amplitude scale * std(x) is a sampling choice and is not differentiated,
// so d out / d x is the identity.

using PerturbSig = Tensor(const Tensor&, double, int64_t, int64_t);

struct PerturbFunction : public torch::autograd::Function<PerturbFunction> {
  static Tensor forward(AutogradContext*, const Tensor& x, double scale, int64_t seed, int64_t offset) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto impl = op<PerturbSig>("wgan_kernels::perturb");
    return impl.call(x, scale, seed, offset);
  }
  static variable_list backward(AutogradContext*, variable_list grads) {
    return {grads[0], Tensor(), Tensor(), Tensor()};
  }
};

Tensor perturb_autograd(const Tensor& x, double scale, int64_t seed, int64_t offset) {
  if (needs_grad({&x})) return PerturbFunction::apply(x, scale, seed, offset);
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto impl = op<PerturbSig>("wgan_kernels::perturb");
  return impl.call(x, scale, seed, offset);
}

// ---------------------------------------------------------------------------------------

using GradNormSig = Tensor(const Tensor&);
using GradNormBackwardSig = Tensor(const Tensor&, const Tensor&, const Tensor&);

struct GradNormFunction : public torch::autograd::Function<GradNormFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto impl = op<GradNormSig>("wgan_kernels::grad_norm");
    Tensor norms = impl.call(grad);
    ctx->save_for_backward({grad, norms});
    return norms;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto impl = op<GradNormBackwardSig>("wgan_kernels::grad_norm_backward");
    const auto saved = ctx->get_saved_variables();
    return {impl.call(grads[0], saved[0], saved[1])};
  }
};

Tensor grad_norm_autograd(const Tensor& grad) {
  if (needs_grad({&grad})) return GradNormFunction::apply(grad);
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto impl = op<GradNormSig>("wgan_kernels::grad_norm");
  return impl.call(grad);
}

// ---------------------------------------------------------------------------------------
// norm_penalty: differentiable in grad; grad_scale and sample_weight are constants.

using NormPenaltySig = std::tuple<Tensor, Tensor>(const Tensor&, const OptTensor&, const OptTensor&, double, bool,
                                                  double, double, c10::string_view);
using NormPenaltyBackwardSig = Tensor(const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                                      const OptTensor&, double, bool, double, double, c10::string_view);

struct NormPenaltyFunction : public torch::autograd::Function<NormPenaltyFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& grad, const OptTensor& grad_scale,
                               const OptTensor& sample_weight, double target, bool one_sided, double weight,
                               double scale, c10::string_view reduction) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto impl = op<NormPenaltySig>("wgan_kernels::norm_penalty");
    auto [penalty, norms] = impl.call(grad, grad_scale, sample_weight, target, one_sided, weight, scale, reduction);
    ctx->save_for_backward({grad, norms, grad_scale.value_or(Tensor()), sample_weight.value_or(Tensor())});
    ctx->saved_data["target"] = target;
    ctx->saved_data["one_sided"] = one_sided;
    ctx->saved_data["weight"] = weight;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["reduction"] = std::string(reduction);
    ctx->mark_non_differentiable({norms});
    ctx->set_materialize_grads(false);  // no zero-filled gradient for the non-differentiable norms
    return {penalty, norms};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto impl = op<NormPenaltyBackwardSig>("wgan_kernels::norm_penalty_backward");
    if (!grads[0].defined()) return variable_list(8);
    const auto saved = ctx->get_saved_variables();
    const auto optional = [](const Tensor& t) { return t.defined() ? OptTensor(t) : OptTensor(); };
    const std::string reduction = ctx->saved_data["reduction"].toStringRef();
    Tensor grad_in = impl.call(grads[0], saved[0], saved[1], optional(saved[2]), optional(saved[3]),
                               ctx->saved_data["target"].toDouble(), ctx->saved_data["one_sided"].toBool(),
                               ctx->saved_data["weight"].toDouble(), ctx->saved_data["scale"].toDouble(),
                               reduction);
    return {grad_in, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

std::tuple<Tensor, Tensor> norm_penalty_autograd(const Tensor& grad, const OptTensor& grad_scale,
                                                 const OptTensor& sample_weight, double target, bool one_sided,
                                                 double weight, double scale, c10::string_view reduction) {
  if (needs_grad({&grad})) {
    auto out = NormPenaltyFunction::apply(grad, grad_scale, sample_weight, target, one_sided, weight, scale,
                                          reduction);
    return {out[0], out[1]};
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto impl = op<NormPenaltySig>("wgan_kernels::norm_penalty");
  return impl.call(grad, grad_scale, sample_weight, target, one_sided, weight, scale, reduction);
}

// ---------------------------------------------------------------------------------------

using PairPenaltySig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                  c10::string_view, double, double, c10::string_view);
using PairPenaltyBackwardSig = std::tuple<Tensor, Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, c10::string_view,
    double, double, c10::string_view);

struct PairPenaltyFunction : public torch::autograd::Function<PairPenaltyFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& f_real, const Tensor& f_fake, const Tensor& real,
                               const Tensor& fake, c10::string_view kind, double weight, double p,
                               c10::string_view reduction) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto impl = op<PairPenaltySig>("wgan_kernels::pair_penalty");
    auto [penalty, dist] = impl.call(f_real, f_fake, real, fake, kind, weight, p, reduction);
    ctx->save_for_backward({f_real, f_fake, real, fake, dist});
    ctx->saved_data["kind"] = std::string(kind);
    ctx->saved_data["weight"] = weight;
    ctx->saved_data["p"] = p;
    ctx->saved_data["reduction"] = std::string(reduction);
    ctx->mark_non_differentiable({dist});
    ctx->set_materialize_grads(false);
    return {penalty, dist};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto impl = op<PairPenaltyBackwardSig>("wgan_kernels::pair_penalty_backward");
    if (!grads[0].defined()) return variable_list(8);
    const auto s = ctx->get_saved_variables();
    const std::string kind = ctx->saved_data["kind"].toStringRef();
    const std::string reduction = ctx->saved_data["reduction"].toStringRef();
    auto [g_f_real, g_f_fake, g_real, g_fake] =
        impl.call(grads[0], s[0], s[1], s[2], s[3], s[4], kind, ctx->saved_data["weight"].toDouble(),
                  ctx->saved_data["p"].toDouble(), reduction);
    return {g_f_real, g_f_fake, g_real, g_fake, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

std::tuple<Tensor, Tensor> pair_penalty_autograd(const Tensor& f_real, const Tensor& f_fake, const Tensor& real,
                                                 const Tensor& fake, c10::string_view kind, double weight,
                                                 double p, c10::string_view reduction) {
  if (needs_grad({&f_real, &f_fake, &real, &fake})) {
    auto out = PairPenaltyFunction::apply(f_real, f_fake, real, fake, kind, weight, p, reduction);
    return {out[0], out[1]};
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto impl = op<PairPenaltySig>("wgan_kernels::pair_penalty");
  return impl.call(f_real, f_fake, real, fake, kind, weight, p, reduction);
}

TORCH_LIBRARY_IMPL(wgan_kernels, Autograd, m) {
  m.impl("interpolate", &interpolate_autograd);
  m.impl("perturb", &perturb_autograd);
  m.impl("grad_norm", &grad_norm_autograd);
  m.impl("norm_penalty", &norm_penalty_autograd);
  m.impl("pair_penalty", &pair_penalty_autograd);
}

// A fresh 64-bit seed from PyTorch's default CPU generator (so torch.manual_seed replays it).
int64_t draw_cpu_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return static_cast<int64_t>(gen.get<at::CPUGeneratorImpl>()->random64());
}

}  // namespace
}  // namespace wgan_kernels

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "wgan_kernels compiled ops (registered under torch.ops.wgan_kernels)";
  m.def("draw_cpu_seed", &wgan_kernels::draw_cpu_seed, "A 64-bit seed from PyTorch's default CPU generator.");
#ifdef WITH_CUDA
  m.attr("kernel_devices") = pybind11::make_tuple("cpu", "cuda");
#else
  m.attr("kernel_devices") = pybind11::make_tuple("cpu");
#endif
}
