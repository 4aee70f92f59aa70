#include "workflows/sha256.hpp"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define FERRY_SHA_NI 1
#endif

namespace ferry {

namespace {

constexpr uint32_t k[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
  0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
  0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
  0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
  0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
  0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
  0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

void portable_block(uint32_t h[8], const unsigned char* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16)
           | (uint32_t{p[4 * i + 2]} << 8) | uint32_t{p[4 * i + 3]};
  for (int i = 16; i < 64; ++i) {
    auto s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    auto s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; ++i) {
    auto s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    auto ch = (e & f) ^ (~e & g);
    auto t1 = hh + s1 + ch + k[i] + w[i];
    auto s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    auto maj = (a & b) ^ (a & c) ^ (b & c);
    auto t2 = s0 + maj;
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d;
  h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void portable(uint32_t h[8], const unsigned char* p, size_t blocks) {
  for (size_t i = 0; i < blocks; ++i)
    portable_block(h, p + 64 * i);
}

#ifdef FERRY_SHA_NI
// The x86 SHA extensions (Intel's reference sequence): four rounds per pair of
// sha256rnds2, the message schedule with sha256msg1/msg2, the state held as ABEF and CDGH.
__attribute__((target("sha,sse4.1,ssse3"))) void sha_ni(uint32_t h[8], const unsigned char* p,
                                                         size_t blocks) {
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)), 0xB1);
  __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4)), 0x1B);
  __m128i s0 = _mm_alignr_epi8(tmp, s1, 8); // ABEF
  s1 = _mm_blend_epi16(s1, tmp, 0xF0);      // CDGH
  for (size_t b = 0; b < blocks; ++b, p += 64) {
    __m128i abef = s0;
    __m128i cdgh = s1;
    __m128i m[4];
    for (int g = 0; g < 16; ++g) {
      if (g < 4)
        m[g] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g)),
                                swap);
      auto& w = m[g % 4];
      __m128i msg = _mm_add_epi32(w, _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 4 * g)));
      s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
      if (g >= 3 && g <= 14) {
        auto& next = m[(g + 1) % 4];
        next = _mm_add_epi32(next, _mm_alignr_epi8(w, m[(g + 3) % 4], 4));
        next = _mm_sha256msg2_epu32(next, w);
      }
      s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(msg, 0x0E));
      if (g >= 1 && g <= 12) {
        auto& prev = m[(g + 3) % 4];
        prev = _mm_sha256msg1_epu32(prev, w);
      }
    }
    s0 = _mm_add_epi32(s0, abef);
    s1 = _mm_add_epi32(s1, cdgh);
  }
  tmp = _mm_shuffle_epi32(s0, 0x1B);      // FEBA
  s1 = _mm_shuffle_epi32(s1, 0xB1);       // DCHG
  s0 = _mm_blend_epi16(tmp, s1, 0xF0);    // DCBA
  s1 = _mm_alignr_epi8(s1, tmp, 8);       // HGFE
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), s0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), s1);
}

bool has_sha_ni() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
    return false;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#endif

using compress_fn = void (*)(uint32_t*, const unsigned char*, size_t);

compress_fn pick(bool portable_only) {
#ifdef FERRY_SHA_NI
  if (!portable_only && has_sha_ni())
    return sha_ni;
#endif
  return portable;
}

std::string digest(std::string_view data, compress_fn compress) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  size_t full = n / 64;
  compress(h, p, full);
  unsigned char tail[128] = {0};
  size_t rest = n - 64 * full;
  std::memcpy(tail, p + 64 * full, rest);
  tail[rest] = 0x80;
  size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = static_cast<uint64_t>(n) * 8;
  for (int i = 0; i < 8; ++i)
    tail[tail_len - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  compress(h, tail, tail_len / 64);
  static const char* hex = "0123456789abcdef";
  std::string out(64, '0');
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j)
      out[8 * i + j] = hex[(h[i] >> (28 - 4 * j)) & 0xf];
  return out;
}

} // namespace

std::string sha256_hex(std::string_view data) {
  static const compress_fn compress = pick(false);
  return digest(data, compress);
}

std::string sha256_hex_portable(std::string_view data) {
  return digest(data, portable);
}

bool sha256_accelerated() {
  return pick(false) != portable;
}

} // namespace ferry
