// Op schemas, autograd kernels and the Python module of wgan_kernels.
//
// Every op is defined once here; each device registers its kernels for the same schemas
// (csrc/cpu/kernels.cpp, csrc/cuda/*.cu). Fake (meta) kernels for torch.compile live in
// wgan_kernels/_ops.py, the plain-PyTorch specification in wgan_kernels/reference.py.
//
// Autograd. The forward ops' Autograd kernels run the op below the Autograd key and, only when
// an input requires grad, attach a backward node that calls the backward op. The backward ops
// have Autograd kernels too: with no input that requires grad (every first-order backward) they
// run the fused kernel; otherwise (create_graph=True) they compute the same values as a
// composition of differentiable ATen ops and wgan_kernels ops, so every op is differentiable to
// any order. The cached per-sample values a backward op takes (norms, dist) are treated as what
// they cache, functions of grad or of real and fake: the composition recomputes them with
// grad_norm, and they must not require grad themselves.
//
// Randomness (seed, row_offset, generator): an int seed selects the Philox stream (csrc/philox.h);
// seed=None draws one from `generator` or the device's default generator, inside the kernel.
// row_offset shifts the stream by whole samples, so a data-parallel rank k calling with
// row_offset = k * B draws rows kB .. kB+B-1 of the single-process draw.
//
// Backward output masks (output_mask): a gradient not asked for is returned undefined (None)
// and not computed.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/dynamo/compiled_autograd.h>
#include <torch/extension.h>
#include <torch/library.h>

#include <array>
#include <mutex>
#include <set>

#include "penalty.h"

namespace wgan_kernels {
namespace {

using at::Tensor;
using torch::autograd::variable_list;
using OptTensor = std::optional<Tensor>;

TORCH_LIBRARY(wgan_kernels, m) {
  // Returns (x_hat, t): t the (B,) float32 interpolation weights, saved for the backward.
  m.def("interpolate(Tensor real, Tensor fake, int? seed, int row_offset, Generator? generator) -> (Tensor, Tensor)");
  // Returns (grad_real, grad_fake); output_mask = which of them to compute.
  m.def("interpolate_backward(Tensor grad_out, Tensor t, bool[2] output_mask) -> (Tensor, Tensor)");
  m.def("perturb(Tensor x, float scale, int? seed, int row_offset, Generator? generator) -> Tensor");
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
  // Returns the gradients for (f_real, f_fake, real, fake); output_mask = which of them to compute.
  m.def(
      "pair_penalty_backward(Tensor grad_out, Tensor f_real, Tensor f_fake, Tensor real, Tensor fake, "
      "Tensor dist, str kind, float weight, float p, str reduction, bool[4] output_mask) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
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

OptTensor optional_tensor(const Tensor& t) { return t.defined() ? OptTensor(t) : OptTensor(); }
Tensor detached_or_undefined(const OptTensor& t) { return t.has_value() && t->defined() ? t->detach() : Tensor(); }

// ---------------------------------------------------------------------------------------
// The backward node

// backward(grad of the node's output, saved tensors, the op's other arguments, which input
// gradients are needed) -> one gradient per input (undefined where not needed).
using BackwardFn = variable_list (*)(const Tensor& grad, const variable_list& saved,
                                     const std::vector<c10::IValue>& args, const std::vector<bool>& needed);

// The node the autograd codegen would build for an op: saved tensors, plain arguments and a
// backward function; it costs far less per call than torch::autograd::Function. Supports
// compiled autograd the way PyTorch's generated nodes do: compiled_args() keys the cache,
// apply_with_saved() puts a call of the same backward into the traced graph.
struct OpBackward : public torch::autograd::Node {
  OpBackward(std::string name, BackwardFn backward, std::vector<c10::IValue> args)
      : name_(std::move(name)), backward_(backward), args_(std::move(args)) {}

  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined()) return variable_list(num_outputs());
    variable_list saved;
    {
      std::lock_guard<std::mutex> lock(mutex_);  // against release_variables on another thread
      saved.reserve(saved_.size());
      for (const auto& s : saved_) saved.push_back(s.unpack());
    }
    return backward_(grads[0], saved, args_, needed());
  }

  std::string name() const override { return name_; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& s : saved_) s.reset_data();
  }

  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& args) const override {
    args.collect(name_);
    args.collect(saved_, /*is_output=*/false);
    for (const auto& a : args_) args.collect(a);
  }

  variable_list apply_with_saved(const variable_list& grads,
                                 torch::dynamo::autograd::SwapSavedVariables& swap) override {
    std::lock_guard<std::mutex> lock(mutex_);
    swap.before(saved_);
    // packed: the saved tensors (proxies now), the arguments, the needed-gradient flags
    std::vector<c10::IValue> packed;
    for (const auto& s : saved_) packed.emplace_back(s.unpack());
    packed.insert(packed.end(), args_.begin(), args_.end());
    for (const bool n : needed()) packed.emplace_back(n);
    const auto& py = torch::dynamo::autograd::getPyCompilerInterface();
    const std::string fn_name = bind_functional(swap.get_py_compiler(), packed);
    const auto output_metadata =
        torch::dynamo::autograd::IValuePacker<std::vector<std::optional<torch::autograd::InputMetadata>>>::pack(
            torch::dynamo::autograd::get_input_metadata(next_edges()));
    variable_list result =
        py->call_function(swap.get_py_compiler(), "apply_functional", fn_name, grads, packed, output_metadata);
    swap.after(saved_);
    return result;
  }

  std::string name_;
  BackwardFn backward_;
  std::vector<c10::IValue> args_;
  std::vector<torch::autograd::SavedVariable> saved_;

 private:
  std::vector<bool> needed() const {
    std::vector<bool> flags(num_outputs());
    for (size_t i = 0; i < flags.size(); ++i) flags[i] = task_should_compute_output(i);
    return flags;
  }

  // Binds "wgan_kernels_<node name>" in compiled autograd's op namespace (once per process, as
  // that namespace is): a function of (grads, packed) that runs the same backward.
  std::string bind_functional(PyObject* py_compiler, const std::vector<c10::IValue>& packed) const {
    static std::mutex mutex;
    static std::set<std::string> bound;
    const std::string fn_name = "wgan_kernels_" + name_;
    std::lock_guard<std::mutex> lock(mutex);
    if (bound.count(fn_name)) return fn_name;
    const size_t num_saved = saved_.size(), num_args = args_.size();
    std::vector<at::TypePtr> schema;  // saved tensors may be undefined (an absent grad_scale)
    for (size_t i = 0; i < packed.size(); ++i)
      schema.push_back(i < num_saved ? at::OptionalType::create(at::TensorType::get()) : packed[i].type());
    auto functional = [backward = backward_, num_saved, num_args](const variable_list& grads,
                                                                  const std::vector<c10::IValue>& packed) {
      variable_list saved;
      for (size_t i = 0; i < num_saved; ++i) saved.push_back(packed[i].isNone() ? Tensor() : packed[i].toTensor());
      const std::vector<c10::IValue> args(packed.begin() + num_saved, packed.begin() + num_saved + num_args);
      std::vector<bool> needed;
      for (size_t i = num_saved + num_args; i < packed.size(); ++i) needed.push_back(packed[i].toBool());
      return backward(grads[0], saved, args, needed);
    };
    torch::dynamo::autograd::getPyCompilerInterface()->bind_function(py_compiler, fn_name, functional, schema,
                                                                      /*is_custom_function=*/false,
                                                                      /*is_traceable=*/true);
    bound.insert(fn_name);
    return fn_name;
  }
};

// Connects `output` (the op's only differentiable output) to `inputs` through a new OpBackward.
void attach_backward(const Tensor& output, std::initializer_list<Tensor> inputs, std::initializer_list<Tensor> saved,
                     const char* name, BackwardFn backward, std::vector<c10::IValue> args = {}) {
  auto node = c10::make_intrusive<OpBackward>(name, backward, std::move(args));
  torch::autograd::edge_list edges;
  for (const Tensor& t : inputs) edges.push_back(torch::autograd::impl::gradient_edge(t));
  node->set_next_edges(std::move(edges));
  for (const Tensor& t : saved) node->saved_.emplace_back(t, /*is_output=*/false);
  torch::autograd::set_history(output, node);
}

// ---------------------------------------------------------------------------------------
// Differentiable compositions of the backward ops (used when create_graph needs their graph)

at::ScalarType acc_dtype(const Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// (B,) values viewed to broadcast over the samples of `like`
Tensor per_sample(const Tensor& values, const Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return values.reshape(shape);
}

void check_cache_input(const Tensor& t, const char* name, const char* op_name) {
  TORCH_CHECK(!(t.defined() && t.requires_grad()), "wgan_kernels::", op_name, ": ", name,
              " caches a function of the other inputs and is not differentiable; pass it detached");
}

// d loss / d term_i, (B,): the upstream gradient times weight (and 1/B for a mean)
Tensor term_gradients(const Tensor& grad_out, int64_t batch, double weight, c10::string_view reduction,
                      at::ScalarType acc) {
  const double factor = parse_reduction(reduction) == Reduction::Mean && batch > 0 ? weight / batch : weight;
  return (grad_out.to(acc).reshape(-1) * factor).expand({batch});
}

Tensor grad_norm_op(const Tensor& grad) {  // with autograd
  static auto grad_norm = op<Tensor(const Tensor&)>("wgan_kernels::grad_norm");
  return grad_norm.call(grad);
}

std::tuple<Tensor, Tensor> interpolate_backward_composite(const Tensor& grad_out, const Tensor& t,
                                                          std::array<bool, 2> output_mask) {
  check_cache_input(t, "t", "interpolate_backward");
  const auto acc = acc_dtype(grad_out);
  const Tensor g = grad_out.to(acc), weights = per_sample(t.to(acc), grad_out);
  return {output_mask[0] ? (g * weights).to(grad_out.scalar_type()) : Tensor(),
          output_mask[1] ? (g * (1 - weights)).to(grad_out.scalar_type()) : Tensor()};
}

// grad * where(n == 0, 0, grad_out / n): d||g||/dg taken as 0 at g == 0, at every order.
Tensor grad_norm_backward_composite(const Tensor& grad_out, const Tensor& grad, const Tensor& norms) {
  check_cache_input(norms, "norms", "grad_norm_backward");
  const auto acc = acc_dtype(grad);
  const Tensor n = grad.requires_grad() ? grad_norm_op(grad) : norms.to(acc);
  const Tensor zero = n == 0;
  const Tensor coef = at::where(zero, 0, grad_out.to(acc).reshape(-1) / at::where(zero, 1, n));
  return (grad.to(acc) * per_sample(coef, grad)).to(grad.scalar_type());
}

Tensor norm_penalty_backward_composite(const Tensor& grad_out, const Tensor& grad, const Tensor& norms,
                                       const OptTensor& grad_scale, const OptTensor& sample_weight, double target,
                                       bool one_sided, double weight, double scale, c10::string_view reduction) {
  check_cache_input(norms, "norms", "norm_penalty_backward");
  const auto acc = acc_dtype(grad);
  const int64_t batch = grad.size(0);
  // the loss scale s (a tensor when grad_scale is one: no host sync); n = ||g|| / s
  const Tensor s = grad_scale.has_value() ? grad_scale->detach().to(acc).reshape({}) * scale
                                          : at::scalar_tensor(scale, grad.options().dtype(acc));
  const Tensor n = grad.requires_grad() ? grad_norm_op(grad) / s : norms.to(acc);
  Tensor up = term_gradients(grad_out, batch, weight, reduction, acc);
  if (sample_weight.has_value()) up = up * sample_weight->detach().to(acc).reshape(-1);
  Tensor d = n - target;
  if (one_sided) d = d.clamp_min(0);
  // d term / d g = 2 d * g / (n s^2), taken as 0 at g == 0
  const Tensor zero = n == 0;
  const Tensor coef = at::where(zero, 0, up * 2 * d / (at::where(zero, 1, n) * s * s));
  return (grad.to(acc) * per_sample(coef, grad)).to(grad.scalar_type());
}

std::tuple<Tensor, Tensor, Tensor, Tensor> pair_penalty_backward_composite(
    const Tensor& grad_out, const Tensor& f_real, const Tensor& f_fake, const Tensor& real, const Tensor& fake,
    const Tensor& dist, c10::string_view kind, double weight, double p, c10::string_view reduction,
    std::array<bool, 4> output_mask) {
  check_cache_input(dist, "dist", "pair_penalty_backward");
  const auto acc = acc_dtype(real);
  const int64_t batch = real.size(0);
  const Tensor diff = real.to(acc) - fake.to(acc);
  const Tensor r = real.requires_grad() || fake.requires_grad() ? grad_norm_op(diff) : dist.to(acc);
  const Tensor df = f_real.to(acc).reshape(-1) - f_fake.to(acc).reshape(-1);
  const Tensor up = term_gradients(grad_out, batch, weight, reduction, acc);
  // penalty.h pair_term, with every branch finite (where() differentiates both branches)
  const Tensor apart = r != 0, r_safe = at::where(apart, r, 1);
  Tensor d_df, d_dx;  // d term / d(f_real - f_fake); d term / d real = d_dx * (real - fake)
  if (parse_pair_kind(kind) == PairKind::Quotient) {
    const Tensor d = r_safe.pow(p), abs_df = df.abs();
    const Tensor h = (abs_df / d - 1).clamp_min(0);
    d_df = at::where(apart, 2 * h * df.sign() / d, 0);
    d_dx = at::where(apart, -2 * h * abs_df / (d * d) * p * r_safe.pow(p - 2), 0);
  } else {
    const Tensor h = (df - at::where(apart, r_safe.pow(p), 0)).clamp_min(0);
    d_df = 2 * h;
    d_dx = at::where(apart, -2 * h * p * r_safe.pow(p - 2), 0);
  }
  const Tensor g_f = up * d_df;
  const Tensor g_x = output_mask[2] || output_mask[3] ? diff * per_sample(up * d_dx, real) : Tensor();
  return {output_mask[0] ? g_f.reshape(f_real.sizes()).to(f_real.scalar_type()) : Tensor(),
          output_mask[1] ? (-g_f).reshape(f_fake.sizes()).to(f_fake.scalar_type()) : Tensor(),
          output_mask[2] ? g_x.to(real.scalar_type()) : Tensor(),
          output_mask[3] ? (-g_x).to(real.scalar_type()) : Tensor()};
}

// ---------------------------------------------------------------------------------------
// Backward ops at the Autograd key: the fused kernel unless a higher-order graph is needed

using InterpolateBackwardSig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, std::array<bool, 2>);
using GradNormBackwardSig = Tensor(const Tensor&, const Tensor&, const Tensor&);
using NormPenaltyBackwardSig = Tensor(const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                                      const OptTensor&, double, bool, double, double, c10::string_view);
using PairPenaltyBackwardSig = std::tuple<Tensor, Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, c10::string_view,
    double, double, c10::string_view, std::array<bool, 4>);

std::tuple<Tensor, Tensor> interpolate_backward_autograd(const Tensor& grad_out, const Tensor& t,
                                                         std::array<bool, 2> output_mask) {
  if (needs_grad({&grad_out, &t})) return interpolate_backward_composite(grad_out, t, output_mask);
  static auto fused = op<InterpolateBackwardSig>("wgan_kernels::interpolate_backward");
  at::AutoDispatchBelowADInplaceOrView guard;
  return fused.call(grad_out, t, output_mask);
}

Tensor grad_norm_backward_autograd(const Tensor& grad_out, const Tensor& grad, const Tensor& norms) {
  if (needs_grad({&grad_out, &grad, &norms})) return grad_norm_backward_composite(grad_out, grad, norms);
  static auto fused = op<GradNormBackwardSig>("wgan_kernels::grad_norm_backward");
  at::AutoDispatchBelowADInplaceOrView guard;
  return fused.call(grad_out, grad, norms);
}

Tensor norm_penalty_backward_autograd(const Tensor& grad_out, const Tensor& grad, const Tensor& norms,
                                      const OptTensor& grad_scale, const OptTensor& sample_weight, double target,
                                      bool one_sided, double weight, double scale, c10::string_view reduction) {
  if (needs_grad({&grad_out, &grad, &norms}))
    return norm_penalty_backward_composite(grad_out, grad, norms, grad_scale, sample_weight, target, one_sided,
                                           weight, scale, reduction);
  static auto fused = op<NormPenaltyBackwardSig>("wgan_kernels::norm_penalty_backward");
  at::AutoDispatchBelowADInplaceOrView guard;
  return fused.call(grad_out, grad, norms, grad_scale, sample_weight, target, one_sided, weight, scale, reduction);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> pair_penalty_backward_autograd(
    const Tensor& grad_out, const Tensor& f_real, const Tensor& f_fake, const Tensor& real, const Tensor& fake,
    const Tensor& dist, c10::string_view kind, double weight, double p, c10::string_view reduction,
    std::array<bool, 4> output_mask) {
  if (needs_grad({&grad_out, &f_real, &f_fake, &real, &fake, &dist}))
    return pair_penalty_backward_composite(grad_out, f_real, f_fake, real, fake, dist, kind, weight, p, reduction,
                                           output_mask);
  static auto fused = op<PairPenaltyBackwardSig>("wgan_kernels::pair_penalty_backward");
  at::AutoDispatchBelowADInplaceOrView guard;
  return fused.call(grad_out, f_real, f_fake, real, fake, dist, kind, weight, p, reduction, output_mask);
}

// ---------------------------------------------------------------------------------------
// Forward ops at the Autograd key, and their nodes' backward functions

variable_list interpolate_node_backward(const Tensor& grad, const variable_list& saved,
                                        const std::vector<c10::IValue>&, const std::vector<bool>& needed) {
  auto [grad_real, grad_fake] = interpolate_backward_autograd(grad, saved[0], {needed[0], needed[1]});
  return {grad_real, grad_fake};
}

using InterpolateSig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, std::optional<int64_t>, int64_t,
                                                  std::optional<at::Generator>);

std::tuple<Tensor, Tensor> interpolate_autograd(const Tensor& real, const Tensor& fake, std::optional<int64_t> seed,
                                                int64_t row_offset, std::optional<at::Generator> generator) {
  static auto forward = op<InterpolateSig>("wgan_kernels::interpolate");
  Tensor out, t;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::tie(out, t) = forward.call(real, fake, seed, row_offset, std::move(generator));
  }
  if (needs_grad({&real, &fake}))
    attach_backward(out, {real, fake}, {t}, "InterpolateBackward", &interpolate_node_backward);
  return {out, t};
}

// perturb: the noise amplitude scale * std(x) is a sampling choice and is not differentiated,
// so d out / d x is the identity.
variable_list perturb_node_backward(const Tensor& grad, const variable_list&, const std::vector<c10::IValue>&,
                                    const std::vector<bool>&) {
  return {grad};
}

using PerturbSig = Tensor(const Tensor&, double, std::optional<int64_t>, int64_t, std::optional<at::Generator>);

Tensor perturb_autograd(const Tensor& x, double scale, std::optional<int64_t> seed, int64_t row_offset,
                        std::optional<at::Generator> generator) {
  static auto forward = op<PerturbSig>("wgan_kernels::perturb");
  Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    out = forward.call(x, scale, seed, row_offset, std::move(generator));
  }
  if (needs_grad({&x})) attach_backward(out, {x}, {}, "PerturbBackward", &perturb_node_backward);
  return out;
}

variable_list grad_norm_node_backward(const Tensor& grad, const variable_list& saved,
                                      const std::vector<c10::IValue>&, const std::vector<bool>&) {
  return {grad_norm_backward_autograd(grad, saved[0], saved[1])};
}

Tensor grad_norm_autograd(const Tensor& grad) {
  static auto forward = op<Tensor(const Tensor&)>("wgan_kernels::grad_norm");
  Tensor norms;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    norms = forward.call(grad);
  }
  // the norms are saved before they become the node's output, as a plain value
  if (needs_grad({&grad}))
    attach_backward(norms, {grad}, {grad, norms.detach()}, "GradNormBackward", &grad_norm_node_backward);
  return norms;
}

// norm_penalty: differentiable in grad; grad_scale and sample_weight are constants.
variable_list norm_penalty_node_backward(const Tensor& grad, const variable_list& saved,
                                         const std::vector<c10::IValue>& args, const std::vector<bool>&) {
  return {norm_penalty_backward_autograd(grad, saved[0], saved[1], optional_tensor(saved[2]), optional_tensor(saved[3]),
                                         args[0].toDouble(), args[1].toBool(), args[2].toDouble(),
                                         args[3].toDouble(), args[4].toStringRef())};
}

using NormPenaltySig = std::tuple<Tensor, Tensor>(const Tensor&, const OptTensor&, const OptTensor&, double, bool,
                                                  double, double, c10::string_view);

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
  if (needs_grad({&grad})) {
    attach_backward(penalty, {grad},
                    {grad, norms, detached_or_undefined(grad_scale), detached_or_undefined(sample_weight)},
                    "NormPenaltyBackward", &norm_penalty_node_backward,
                    {target, one_sided, weight, scale, std::string(reduction)});
  }
  return {penalty, norms};
}

variable_list pair_penalty_node_backward(const Tensor& grad, const variable_list& s,
                                         const std::vector<c10::IValue>& args, const std::vector<bool>& needed) {
  auto [g_f_real, g_f_fake, g_real, g_fake] = pair_penalty_backward_autograd(
      grad, s[0], s[1], s[2], s[3], s[4], args[0].toStringRef(), args[1].toDouble(), args[2].toDouble(),
      args[3].toStringRef(), {needed[0], needed[1], needed[2], needed[3]});
  return {g_f_real, g_f_fake, g_real, g_fake};
}

using PairPenaltySig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                  c10::string_view, double, double, c10::string_view);

std::tuple<Tensor, Tensor> pair_penalty_autograd(const Tensor& f_real, const Tensor& f_fake, const Tensor& real,
                                                 const Tensor& fake, c10::string_view kind, double weight,
                                                 double p, c10::string_view reduction) {
  static auto forward = op<PairPenaltySig>("wgan_kernels::pair_penalty");
  Tensor penalty, dist;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::tie(penalty, dist) = forward.call(f_real, f_fake, real, fake, kind, weight, p, reduction);
  }
  if (needs_grad({&f_real, &f_fake, &real, &fake})) {
    attach_backward(penalty, {f_real, f_fake, real, fake}, {f_real, f_fake, real, fake, dist},
                    "PairPenaltyBackward", &pair_penalty_node_backward,
                    {std::string(kind), weight, p, std::string(reduction)});
  }
  return {penalty, dist};
}

TORCH_LIBRARY_IMPL(wgan_kernels, Autograd, m) {
  m.impl("interpolate", &interpolate_autograd);
  m.impl("interpolate_backward", &interpolate_backward_autograd);
  m.impl("perturb", &perturb_autograd);
  m.impl("grad_norm", &grad_norm_autograd);
  m.impl("grad_norm_backward", &grad_norm_backward_autograd);
  m.impl("norm_penalty", &norm_penalty_autograd);
  m.impl("norm_penalty_backward", &norm_penalty_backward_autograd);
  m.impl("pair_penalty", &pair_penalty_autograd);
  m.impl("pair_penalty_backward", &pair_penalty_backward_autograd);
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
  m.def("parallel_for_threads", &wgan_kernels::parallel_for_threads,
        "Threads one at::parallel_for of the kernels uses (checks the OpenMP build).");
  // penalty_stats returns this many values (wgan_kernels/_ops.py checks it against reference.STAT_NAMES)
  m.attr("num_stats") = wgan_kernels::kNumStats;
#ifdef WITH_CUDA
  m.attr("kernel_devices") = pybind11::make_tuple("cpu", "cuda");
#else
  m.attr("kernel_devices") = pybind11::make_tuple("cpu");
#endif
}
