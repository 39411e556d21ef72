// Op schemas, autograd kernels and the Python module of wgan_kernels.
//
// Every op is defined once here; each device registers its kernels for the same schemas
// (csrc/cpu/kernels.cpp, later csrc/cuda/). The forward ops are differentiable through the
// Autograd kernels below, which run the op below the Autograd key and, only when an input
// requires grad, attach a backward node; backward kernels are ops too.
// Fake (meta) kernels for torch.compile live in wgan_kernels/_ops.py.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/extension.h>
#include <torch/library.h>

#include <mutex>
#include <set>

namespace wgan_kernels {
namespace {

using at::Tensor;
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

// A backward node that calls `backward(grad, saved tensors)` and returns one gradient per
// differentiable input. It is what the autograd codegen builds for ATen ops, and costs far
// less per call than torch::autograd::Function.
using BackwardFn = std::function<variable_list(const Tensor& grad, const variable_list& saved)>;

struct OpBackward : public torch::autograd::Node {
  OpBackward(const char* name, BackwardFn backward) : name_(name), backward_(std::move(backward)) {}

  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined()) return variable_list(num_outputs());
    variable_list saved;
    saved.reserve(saved_.size());
    for (const auto& s : saved_) saved.push_back(s.unpack());
    return backward_(grads[0], saved);
  }
  std::string name() const override { return name_; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& s : saved_) s.reset_data();
  }

  std::string name_;
  BackwardFn backward_;
  std::vector<torch::autograd::SavedVariable> saved_;
};

// Connects `output` (the only differentiable output) to `inputs` through a new OpBackward.
void attach_backward(const Tensor& output, std::initializer_list<Tensor> inputs, std::initializer_list<Tensor> saved,
                     const char* name, BackwardFn backward) {
  auto node = c10::make_intrusive<OpBackward>(name, std::move(backward));
  torch::autograd::edge_list edges;
  for (const Tensor& t : inputs) edges.push_back(torch::autograd::impl::gradient_edge(t));
  node->set_next_edges(std::move(edges));
  for (const Tensor& t : saved) node->saved_.emplace_back(t, /*is_output=*/false);
  torch::autograd::set_history(output, node);
}

// ---------------------------------------------------------------------------------------

using InterpolateSig = Tensor(const Tensor&, const Tensor&, int64_t, int64_t);
using InterpolateBackwardSig = std::tuple<Tensor, Tensor>(const Tensor&, int64_t, int64_t);

Tensor interpolate_autograd(const Tensor& real, const Tensor& fake, int64_t seed, int64_t offset) {
  static auto forward = op<InterpolateSig>("wgan_kernels::interpolate");
  Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    out = forward.call(real, fake, seed, offset);
  }
  if (!needs_grad({&real, &fake})) return out;
  attach_backward(out, {real, fake}, {}, "InterpolateBackward", [seed, offset](const Tensor& grad, const variable_list&) {
    static auto backward = op<InterpolateBackwardSig>("wgan_kernels::interpolate_backward");
    auto [grad_real, grad_fake] = backward.call(grad, seed, offset);
    return variable_list{grad_real, grad_fake};
  });
  return out;
}

// perturb: the noise amplitude scale * std(x) is a sampling choice and is not differentiated,
// so d out / d x is the identity.
using PerturbSig = Tensor(const Tensor&, double, int64_t, int64_t);

Tensor perturb_autograd(const Tensor& x, double scale, int64_t seed, int64_t offset) {
  static auto forward = op<PerturbSig>("wgan_kernels::perturb");
  Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    out = forward.call(x, scale, seed, offset);
  }
  if (!needs_grad({&x})) return out;
  attach_backward(out, {x}, {}, "PerturbBackward",
                  [](const Tensor& grad, const variable_list&) { return variable_list{grad}; });
  return out;
}

using GradNormSig = Tensor(const Tensor&);
using GradNormBackwardSig = Tensor(const Tensor&, const Tensor&, const Tensor&);

Tensor grad_norm_autograd(const Tensor& grad) {
  static auto forward = op<GradNormSig>("wgan_kernels::grad_norm");
  Tensor norms;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    norms = forward.call(grad);
  }
  if (!needs_grad({&grad})) return norms;
  // the norms are saved before they become the node's output, as a plain value
  attach_backward(norms, {grad}, {grad, norms.detach()}, "GradNormBackward",
                  [](const Tensor& g, const variable_list& saved) {
                    static auto backward = op<GradNormBackwardSig>("wgan_kernels::grad_norm_backward");
                    return variable_list{backward.call(g, saved[0], saved[1])};
                  });
  return norms;
}

// norm_penalty: differentiable in grad; grad_scale and sample_weight are constants.
using NormPenaltySig = std::tuple<Tensor, Tensor>(const Tensor&, const OptTensor&, const OptTensor&, double, bool,
                                                  double, double, c10::string_view);
using NormPenaltyBackwardSig = Tensor(const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                                      const OptTensor&, double, bool, double, double, c10::string_view);

std::tuple<Tensor, Tensor> norm_penalty_autograd(const Tensor& grad, const OptTensor& grad_scale,
                                                 const OptTensor& sample_weight, double target, bool one_sided,
                                                 double weight, double scale, c10::string_view reduction) {
  static auto forward = op<NormPenaltySig>("wgan_kernels::norm_penalty");
  Tensor penalty, norms;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::tie(penalty, norms) =
        forward.call(grad, grad_scale, sample_weight, target, one_sided, weight, scale, reduction);
  }
  if (!needs_grad({&grad})) return {penalty, norms};
  const Tensor constant_scale = grad_scale.has_value() ? grad_scale->detach() : Tensor();
  const Tensor constant_weights = sample_weight.has_value() ? sample_weight->detach() : Tensor();
  attach_backward(
      penalty, {grad}, {grad, norms}, "NormPenaltyBackward",
      [=, reduction = std::string(reduction)](const Tensor& g, const variable_list& saved) {
        static auto backward = op<NormPenaltyBackwardSig>("wgan_kernels::norm_penalty_backward");
        const auto optional = [](const Tensor& t) { return t.defined() ? OptTensor(t) : OptTensor(); };
        return variable_list{backward.call(g, saved[0], saved[1], optional(constant_scale),
                                           optional(constant_weights), target, one_sided, weight, scale, reduction)};
      });
  return {penalty, norms};
}

using PairPenaltySig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                  c10::string_view, double, double, c10::string_view);
using PairPenaltyBackwardSig = std::tuple<Tensor, Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, c10::string_view,
    double, double, c10::string_view);

std::tuple<Tensor, Tensor> pair_penalty_autograd(const Tensor& f_real, const Tensor& f_fake, const Tensor& real,
                                                 const Tensor& fake, c10::string_view kind, double weight,
                                                 double p, c10::string_view reduction) {
  static auto forward = op<PairPenaltySig>("wgan_kernels::pair_penalty");
  Tensor penalty, dist;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::tie(penalty, dist) = forward.call(f_real, f_fake, real, fake, kind, weight, p, reduction);
  }
  if (!needs_grad({&f_real, &f_fake, &real, &fake})) return {penalty, dist};
  attach_backward(
      penalty, {f_real, f_fake, real, fake}, {f_real, f_fake, real, fake, dist}, "PairPenaltyBackward",
      [=, kind = std::string(kind), reduction = std::string(reduction)](const Tensor& g, const variable_list& s) {
        static auto backward = op<PairPenaltyBackwardSig>("wgan_kernels::pair_penalty_backward");
        auto [g_f_real, g_f_fake, g_real, g_fake] =
            backward.call(g, s[0], s[1], s[2], s[3], s[4], kind, weight, p, reduction);
        return variable_list{g_f_real, g_f_fake, g_real, g_fake};
      });
  return {penalty, dist};
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

// How many threads an at::parallel_for compiled with the kernels' flags really uses: 1 when the
// extension is built without OpenMP although torch runs several (a silent 2x+ loss on 2 cores).
int64_t parallel_for_threads() {
  std::mutex mutex;
  std::set<int> seen;
  at::parallel_for(0, 1 << 16, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.insert(at::get_thread_num());
  });
  return static_cast<int64_t>(seen.size());
}

}  // namespace
}  // namespace wgan_kernels

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "wgan_kernels compiled ops (registered under torch.ops.wgan_kernels)";
  m.def("draw_cpu_seed", &wgan_kernels::draw_cpu_seed, "A 64-bit seed from PyTorch's default CPU generator.");
  m.def("parallel_for_threads", &wgan_kernels::parallel_for_threads,
        "Threads one at::parallel_for of the kernels uses (checks the OpenMP build).");
#ifdef WITH_CUDA
  m.attr("kernel_devices") = pybind11::make_tuple("cpu", "cuda");
#else
  m.attr("kernel_devices") = pybind11::make_tuple("cpu");
#endif
}
