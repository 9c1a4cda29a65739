// Portable one-lane "vector" operations: the baseline every CPU runs, and
// the path the SIMD variants are checked against.
struct Ops {
  static constexpr int W = 1;
  static constexpr int QV = 4;
  static constexpr int DR = 4;   // decode: query rows per score pass
  static constexpr int SACC = 16;  // decode: score accumulators (rows x keys) per reduction
  static constexpr int PR = 1;   // decode: query rows per P.V pass
  static constexpr int PV_ACC = 8;  // decode: P.V accumulator registers (rows x vectors)
  static constexpr int DV = 4;
  using V = float;

  static V zero() { return 0.0f; }
  static V set1(float x) { return x; }
  static V load(const float* p) { return *p; }
  static void store(float* p, V v) { *p = v; }
  static V load_n(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static V load_f16(const uint16_t* p) { return f16_to_f32(*p); }
  static V load_f16_n(const uint16_t* p, int n) { return n > 0 ? f16_to_f32(*p) : 0.0f; }
  static V load_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
  static V load_bf16_n(const uint16_t* p, int n) { return n > 0 ? bf16_to_f32(*p) : 0.0f; }
  static V fmadd(V a, V b, V c) { return a * b + c; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V max(V a, V b) { return a > b ? a : b; }
  static float hsum(V v) { return v; }
  static void hsum_acc(const V* v, float* out) {
    for (int i = 0; i < SACC; ++i) out[i] = v[i];
  }
  static float hmax(V v) { return v; }
  static V exp(V x) { return x < -87.0f ? 0.0f : std::exp(x); }
};
