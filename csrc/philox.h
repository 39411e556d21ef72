// Counter-based random numbers shared by the CPU kernels and (later) the CUDA kernels.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// A draw is a pure function of (seed, stream, counter), so the same seed gives the same
// numbers on every device and in the plain-PyTorch reference (wgan_kernels/_philox.py),
// which is the specification of the streams below.
#pragma once

#include <cstdint>
#include <cmath>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define WGAN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define WGAN_HOST_DEVICE inline
#endif

namespace wgan_kernels {
namespace philox {

// Stream keys keep the ops' draws independent when they are given the same seed.
constexpr uint32_t kInterpolateStream = 0u;
constexpr uint32_t kPerturbStream = 0x243F6A88u;

struct Uint4 {
  uint32_t x, y, z, w;
};

WGAN_HOST_DEVICE uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(product >> 32);
  return static_cast<uint32_t>(product);
}

// counter = (index lo, index hi, offset lo, offset hi); key = (seed lo, (seed hi) ^ stream).
WGAN_HOST_DEVICE Uint4 philox4x32_10(uint64_t index, uint64_t offset, uint64_t seed, uint32_t stream) {
  Uint4 c{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
          static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)};
  uint32_t k0 = static_cast<uint32_t>(seed);
  uint32_t k1 = static_cast<uint32_t>(seed >> 32) ^ stream;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mulhilo(0xD2511F53u, c.x, &hi0);
    const uint32_t lo1 = mulhilo(0xCD9E8D57u, c.z, &hi1);
    c = Uint4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// 24 random bits -> float in [0, 1), exactly representable.
WGAN_HOST_DEVICE float uniform(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

WGAN_HOST_DEVICE uint32_t word(const Uint4& r, uint32_t k) {
  return k == 0 ? r.x : (k == 1 ? r.y : (k == 2 ? r.z : r.w));
}

// t_i of interpolate: word i % 4 of the draw at counter index i / 4 (one draw serves 4 samples).
WGAN_HOST_DEVICE float interpolation_weight(uint64_t sample, uint64_t seed, uint64_t offset) {
  return uniform(word(philox4x32_10(sample / 4, offset, seed, kInterpolateStream), sample % 4));
}

// t_0 .. t_{count-1} of interpolate, one Philox draw per 4 samples.
inline void interpolation_weights(int64_t count, uint64_t seed, uint64_t offset, float* out) {
  for (int64_t q = 0; 4 * q < count; ++q) {
    const Uint4 r = philox4x32_10(static_cast<uint64_t>(q), offset, seed, kInterpolateStream);
    for (int64_t k = 0; k < 4 && 4 * q + k < count; ++k) out[4 * q + k] = uniform(word(r, static_cast<uint32_t>(k)));
  }
}

// Four standard normals for elements 4q .. 4q+3 (Box-Muller on the pairs (x, y) and (z, w)).
WGAN_HOST_DEVICE void normal4(uint64_t quad, uint64_t seed, uint64_t offset, float out[4]) {
  const Uint4 r = philox4x32_10(quad, offset, seed, kPerturbStream);
  const float two_pi = 6.2831853071795864769f;
  const float u1a = static_cast<float>((r.x >> 8) + 1u) * (1.0f / 16777216.0f);  // (0, 1]
  const float u1b = static_cast<float>((r.z >> 8) + 1u) * (1.0f / 16777216.0f);
  const float ra = ::sqrtf(-2.0f * ::logf(u1a));
  const float rb = ::sqrtf(-2.0f * ::logf(u1b));
  const float a = two_pi * uniform(r.y);
  const float b = two_pi * uniform(r.w);
  out[0] = ra * ::cosf(a);
  out[1] = ra * ::sinf(a);
  out[2] = rb * ::cosf(b);
  out[3] = rb * ::sinf(b);
}

}  // namespace philox
}  // namespace wgan_kernels
