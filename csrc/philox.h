// Counter-based random numbers shared by the CPU kernels and (later) the CUDA kernels.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// A draw is a pure function of (seed, stream, counter), so the same seed gives the same
// numbers on every device and in the plain-PyTorch reference (wgan_kernels/_philox.py),
// which is the specification of the streams below. The counter is (index, offset): the index
// walks the stream (samples of interpolate, elements of perturb, shifted by the op's
// row_offset); the offset is 0 for an int seed and on CPU, and the generator's Philox offset on
// CUDA (at::cuda::philox::unpack), which keeps CUDA graph captures replayable.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

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

// t_first .. t_{first+count-1} of interpolate into out[0..count), one Philox draw per 4 samples.
inline void interpolation_weights(int64_t first, int64_t count, uint64_t seed, uint64_t offset, float* out) {
  const int64_t end = first + count;
  for (int64_t q = first / 4; 4 * q < end; ++q) {
    const Uint4 r = philox4x32_10(static_cast<uint64_t>(q), offset, seed, kInterpolateStream);
    for (int64_t k = std::max<int64_t>(4 * q, first); k < std::min<int64_t>(4 * q + 4, end); ++k)
      out[k - first] = uniform(word(r, static_cast<uint32_t>(k % 4)));
  }
}

template <typename To, typename From>
WGAN_HOST_DEVICE To bit_cast(From from) {
  To to;
  memcpy(&to, &from, sizeof(To));
  return to;
}

// Natural log of x in [2^-24, 1] (Cephes-style polynomial, about 1 ulp). Branch-free and free
// of library calls, so loops over it vectorise and every device gets the same bits.
WGAN_HOST_DEVICE float log_unit(float x) {
  const uint32_t bits = bit_cast<uint32_t>(x);
  const float m = bit_cast<float>((bits & 0x007FFFFFu) | 0x3F000000u);  // x = m 2^e, m in [0.5, 1)
  const int32_t low = m < 0.70710678f;  // then use 2m and e - 1 (exact, and select-free)
  const float e = static_cast<float>(static_cast<int32_t>((bits >> 23) & 0xFFu) - 126 - low);
  const float f = m * static_cast<float>(1 + low) - 1.0f;  // log(1 + f), f in [-0.29, 0.41]
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z - 2.12194440e-4f * e - 0.5f * z;
  return f + y + 0.693359375f * e;
}

// sin and cos of 2 pi u for u in [0, 1): exact reduction to a quarter turn, then polynomials;
// the quadrant swaps and negates with bit operations (select-free, so loops vectorise).
WGAN_HOST_DEVICE void sincos_turns(float u, float* sin_out, float* cos_out) {
  const float r = 4.0f * u;
  const float j = static_cast<float>(static_cast<int32_t>(r + 0.5f));  // nearest quarter, 0..4
  const float t = (r - j) * 1.57079632679489662f;                     // in [-pi/4, pi/4]
  const float t2 = t * t;
  const float sn = t + t * t2 * (-1.6666654611e-1f + t2 * (8.3321608736e-3f + t2 * -1.9515295891e-4f));
  const float cs =
      1.0f - 0.5f * t2 + t2 * t2 * (4.166664568298827e-2f + t2 * (-1.388731625493765e-3f + t2 * 2.443315711809948e-5f));
  const uint32_t q = static_cast<uint32_t>(j);
  const uint32_t swap = 0u - (q & 1u);  // all ones in quadrants 1 and 3
  const uint32_t sn_bits = bit_cast<uint32_t>(sn), cs_bits = bit_cast<uint32_t>(cs);
  const uint32_t s_bits = (sn_bits & ~swap) | (cs_bits & swap);
  const uint32_t c_bits = (cs_bits & ~swap) | (sn_bits & swap);
  *sin_out = bit_cast<float>(s_bits ^ ((q & 2u) << 30));         // negative in quadrants 2, 3
  *cos_out = bit_cast<float>(c_bits ^ (((q + 1u) & 2u) << 30));  // negative in quadrants 1, 2
}

// Four standard normals for elements 4q .. 4q+3 (Box-Muller on the pairs (x, y) and (z, w)).
WGAN_HOST_DEVICE void normal4(uint64_t quad, uint64_t seed, uint64_t offset, float out[4]) {
  const Uint4 r = philox4x32_10(quad, offset, seed, kPerturbStream);
  const float u1a = static_cast<float>((r.x >> 8) + 1u) * (1.0f / 16777216.0f);  // (0, 1]
  const float u1b = static_cast<float>((r.z >> 8) + 1u) * (1.0f / 16777216.0f);
  const float ra = sqrtf(-2.0f * log_unit(u1a));
  const float rb = sqrtf(-2.0f * log_unit(u1b));
  float sa, ca, sb, cb;
  sincos_turns(uniform(r.y), &sa, &ca);
  sincos_turns(uniform(r.w), &sb, &cb);
  out[0] = ra * ca;
  out[1] = ra * sa;
  out[2] = rb * cb;
  out[3] = rb * sb;
}

}  // namespace philox
}  // namespace wgan_kernels
