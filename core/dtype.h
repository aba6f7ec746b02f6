// Element types and their sizes. bf16 is stored as the upper 16 bits of an IEEE float.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"

#if defined(__CUDACC__)
#define SERPENT_HD __host__ __device__
#else
#define SERPENT_HD
#endif

namespace serpent {

enum class DType : uint8_t { f32, f64, bf16, i32, i64 };

inline size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::bf16:
      return 2;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
  }
  return 0;
}

inline const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::bf16:
      return "bf16";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
  }
  return "?";
}

inline DType dtype_from_name(const std::string& name) {
  if (name == "f32" || name == "float32" || name == "fp32") return DType::f32;
  if (name == "f64" || name == "float64" || name == "fp64") return DType::f64;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "i32" || name == "int32") return DType::i32;
  if (name == "i64" || name == "int64") return DType::i64;
  fail("unknown dtype '", name, "': expected one of f32, f64, bf16, i32, i64");
}

inline bool is_floating(DType dt) {
  return dt == DType::f32 || dt == DType::f64 || dt == DType::bf16;
}

// bfloat16 with round-to-nearest-even conversion from float (NaN stays NaN).
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  SERPENT_HD explicit bf16(float f) { bits = from_float(f); }
  SERPENT_HD operator float() const { return to_float(bits); }

  SERPENT_HD static uint16_t from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // quiet NaN
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return uint16_t((u + rounding) >> 16);
  }
  SERPENT_HD static float to_float(uint16_t b) {
    uint32_t u = uint32_t(b) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
};
static_assert(sizeof(bf16) == 2);

}  // namespace serpent
