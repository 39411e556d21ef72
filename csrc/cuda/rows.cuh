// Per-sample ("row") building blocks of the CUDA kernels; the CPU twin is csrc/cpu/rows.h, whose
// layout helpers (batch_of, sample_numel, as_rows, row_output_like, matching) both devices share.
//
// Every op sees B rows of N elements. A row is cut into segments of at most kChunk elements;
// kThreads / tpr segments share a block and tpr threads ("lanes") share a segment, so one grid
// covers many tiny rows (B x 2: one lane per row, 256 rows per block) and a few huge ones
// (64 x 196608: 24 blocks per row). Lanes walk their segment with 128-bit loads when the
// pointers allow it (scalar head and tail), 4 vectors in flight per lane.
//
// Reductions are deterministic: each segment's sum is combined in a fixed order, and work that
// needs every row (a mean over the batch, the stats) runs in the block that finishes last.
// Nothing here synchronises with the host, so every op can be captured in a CUDA graph.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>
#include <type_traits>

#include "../cpu/rows.h"

namespace wgan_kernels {
namespace cuda {

using cpu::acc_dtype;
using cpu::acc_t;
using cpu::as_rows;
using cpu::batch_of;
using cpu::matching;
using cpu::row_output_like;
using cpu::RowOutput;
using cpu::sample_numel;

#define WGAN_CUDA_DISPATCH(TYPE, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, TYPE, NAME, __VA_ARGS__)

constexpr int kThreads = 256;
constexpr int kWarp = 32;
constexpr int64_t kChunk = 8192;  // elements of a row one segment covers at most
constexpr int kUnroll = 4;        // vectors in flight per lane

template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));

template <typename T>
struct alignas(16) Vec {
  T v[kVec<T>];
};

// How B rows of N elements are cut into segments and segments into blocks.
struct Geometry {
  int64_t rows, n, chunks;  // chunks: segments per row
  int tpr;                  // lanes per segment: a power of two up to kThreads

  C10_HOST_DEVICE int64_t segments() const { return rows * chunks; }
  int64_t blocks() const {
    const int64_t per_block = kThreads / tpr;
    return (segments() + per_block - 1) / per_block;
  }
};

inline Geometry geometry(int64_t rows, int64_t n) {
  const int64_t chunks = n > kChunk ? (n + kChunk - 1) / kChunk : 1;
  const int64_t longest = n < kChunk ? n : kChunk;
  int tpr = 1;  // about 16 elements per lane
  while (tpr < kThreads && tpr * int64_t{16} < longest) tpr *= 2;
  return {rows, n, chunks, tpr};
}

// True when the pointers share their offset from a 16-byte boundary, so that one scalar head
// aligns them all for vector access.
inline bool same_alignment(std::initializer_list<const void*> pointers) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(*pointers.begin()) % 16;
  for (const void* p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % 16 != first) return false;
  return true;
}

// The segment a thread works on.
struct Segment {
  int64_t index, row, begin, end;  // index = row * chunks + chunk; elements [begin, end) of the row
  int lane;
  bool valid;
};

__device__ __forceinline__ Segment segment_of(const Geometry& g) {
  const int per_block = kThreads / g.tpr;
  Segment s;
  s.index = static_cast<int64_t>(blockIdx.x) * per_block + threadIdx.x / g.tpr;
  s.lane = threadIdx.x % g.tpr;
  s.valid = s.index < g.segments();
  s.row = s.index / g.chunks;
  s.begin = (s.index % g.chunks) * kChunk;
  s.end = s.begin + kChunk < g.n ? s.begin + kChunk : g.n;
  return s;
}

// Visits the elements [begin, end) of a row starting at `base`, lane by lane: scalar(i) for a
// scalar head and tail, and vector(i, stride, count) for the body, which covers `count` vectors
// of kVec<T> elements at i, i + stride, ... (element i 16-byte aligned; count is an
// std::integral_constant, kUnroll or 1, so the callee can issue all its loads first).
template <typename T, typename Scalar, typename Vector>
__device__ __forceinline__ void walk(const T* base, bool vectorize, int64_t begin, int64_t end, int lane, int tpr,
                                     const Scalar& scalar, const Vector& vector) {
  constexpr int V = kVec<T>;
  int64_t head = end - begin;
  if (vectorize) {
    const int64_t to_boundary =
        static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(base + begin) % 16) % 16 / sizeof(T));
    head = to_boundary < head ? to_boundary : head;
  }
  for (int64_t i = begin + lane; i < begin + head; i += tpr) scalar(i);
  const int64_t body = begin + head;
  const int64_t vectors = vectorize ? (end - body) / V : 0;
  int64_t v = lane;
  for (; v + (kUnroll - 1) * tpr < vectors; v += kUnroll * tpr)
    vector(body + v * V, int64_t{tpr} * V, std::integral_constant<int, kUnroll>{});
  for (; v < vectors; v += tpr) vector(body + v * V, int64_t{0}, std::integral_constant<int, 1>{});
  for (int64_t i = body + vectors * V + lane; i < end; i += tpr) scalar(i);
}

template <typename T>
__device__ __forceinline__ Vec<T> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T>*>(p);
}

template <typename T>
__device__ __forceinline__ void store_vec(T* p, const Vec<T>& v) {
  *reinterpret_cast<Vec<T>*>(p) = v;
}

// Sum of v over the tpr lanes of each segment (fixed order); the result is valid in lane 0.
// Every thread of the block must call it.
template <typename A>
__device__ __forceinline__ A segment_sum(A v, int tpr, A* shared /* kThreads / kWarp */) {
  const int width = tpr < kWarp ? tpr : kWarp;
  for (int offset = width / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset, width);
  if (tpr <= kWarp) return v;
  const int warp = threadIdx.x / kWarp;
  if (threadIdx.x % kWarp == 0) shared[warp] = v;
  __syncthreads();
  const int warps = tpr / kWarp;
  if (threadIdx.x % tpr == 0) {
    v = shared[warp];
    for (int w = 1; w < warps; ++w) v += shared[warp + w];
  }
  __syncthreads();
  return v;
}

// Combines every thread's accumulator in a fixed tree order; the result is valid in thread 0.
// Acc is a trivially copyable struct with merge(const Acc&).
template <typename Acc>
__device__ __forceinline__ Acc block_merge(Acc v) {
  __shared__ __align__(16) unsigned char storage[sizeof(Acc) * kThreads];
  Acc* shared = reinterpret_cast<Acc*>(storage);
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x].merge(shared[threadIdx.x + stride]);
    __syncthreads();
  }
  return shared[0];
}

// True in every thread of the block that is the last of the grid to get here; its reads then see
// every other block's writes. `counter` must be 0 before the launch.
__device__ __forceinline__ bool last_block(unsigned int* counter) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
  __syncthreads();
  if (last) __threadfence();
  return last;
}

struct Sum {
  double value;
  __device__ static Sum empty() { return {0}; }
  __device__ void merge(const Sum& other) { value += other.value; }
};

// Read-only per-sample values on the device: a (B,) vector, a (B, 1) column or one broadcast
// value, in the accumulation dtype A (converted on the device only when the dtype differs).
template <typename A>
struct PerSample {
  const A* data;
  int64_t step;
  __device__ A operator[](int64_t i) const { return data[i * step]; }
};

template <typename A>
struct PerSampleHolder {
  at::Tensor holder;
  PerSample<A> view;
};

template <typename A>
PerSampleHolder<A> per_sample(const at::Tensor& t, int64_t batch, const char* name, bool broadcast_scalar = false) {
  const bool scalar = broadcast_scalar && t.numel() == 1;
  TORCH_CHECK(scalar || (t.numel() == batch && t.dim() >= 1 && t.dim() <= 2 && t.size(0) == batch), name,
              " must have shape (B,) or (B, 1) with B = ", batch, ", got ", t.sizes());
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor, got ", t.device());
  const at::ScalarType dtype = c10::CppTypeToScalarType<A>::value;
  at::Tensor values = t.scalar_type() == dtype ? t : t.to(dtype);
  if (values.numel() == 0) return {values, {nullptr, 0}};
  return {values, {values.const_data_ptr<A>(), scalar ? 0 : values.stride(0)}};
}

// A one-element device tensor in dtype A (the loss scale), or nullptr when absent.
template <typename A>
struct DeviceScalar {
  at::Tensor holder;
  const A* data;
};

template <typename A>
DeviceScalar<A> device_scalar(const std::optional<at::Tensor>& t, const at::Tensor& like, const char* name) {
  if (!t.has_value() || !t->defined()) return {at::Tensor(), nullptr};
  TORCH_CHECK(t->numel() == 1, name, " must hold one value, got shape ", t->sizes());
  at::Tensor value = t->to(like.device(), c10::CppTypeToScalarType<A>::value).reshape({1});
  return {value, value.const_data_ptr<A>()};
}

// Zeroed device counters for last_block, from the caching allocator (one memset, no kernel).
inline at::Tensor zeroed_counter(const at::Tensor& like) {
  at::Tensor counter = at::empty({1}, like.options().dtype(at::kInt));
  C10_CUDA_CHECK(cudaMemsetAsync(counter.mutable_data_ptr(), 0, sizeof(int), at::cuda::getCurrentCUDAStream()));
  return counter;
}

inline void check_rows(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_floating_point(), name, " must be a floating-point tensor, got ", t.scalar_type());
  TORCH_CHECK(t.dim() >= 1, name, " must have a batch dimension (dim >= 1), got a 0-dim tensor");
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor, got ", t.device());
}

inline void check_like(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name) {
  TORCH_CHECK(a.sizes() == b.sizes(), b_name, " must have the shape of ", a_name, " ", a.sizes(), ", got ", b.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), b_name, " must have the dtype of ", a_name, " (", a.scalar_type(),
              "), got ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), b_name, " must be on the device of ", a_name, " (", a.device(), "), got ",
              b.device());
}

inline unsigned int grid_size(int64_t blocks) {
  TORCH_CHECK(blocks < (int64_t{1} << 31), "wgan_kernels: tensor too large for one launch");
  return static_cast<unsigned int>(blocks);
}

}  // namespace cuda
}  // namespace wgan_kernels
