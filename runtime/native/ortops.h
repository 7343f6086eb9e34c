// Shared by kgraph's onnxruntime operator sources (ortops.cc, lstm.cc): the onnxruntime C++
// API (initialised by RegisterCustomOps), the clone attribute of hot loops, branch-free
// helpers and the registration template of float32 operators.
#pragma once

#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

// Hot loops are compiled twice, for AVX2+FMA and for the baseline ISA, picked at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KG_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#define KG_AVX512 __attribute__((target("arch=x86-64-v4")))  // called where the CPU has it
#else
#define KG_CLONES
#define KG_AVX512
#endif

// A helper inlined into its callers, whatever their target clone.
#define KG_INLINE inline __attribute__((always_inline))

// Lets one function contract a * b + c into FMA where the file is built without contraction
// (AdamUpdate must not contract: its results equal the separate ops' bit for bit).
#if defined(__GNUC__) && !defined(__clang__)
#define KG_FMA __attribute__((optimize("fp-contract=fast")))
#else
#define KG_FMA
#endif

namespace kgops {

// -- branch-free helpers (the loops below must vectorise: no data-dependent branches) -----
inline uint32_t bits(float v) { uint32_t b; std::memcpy(&b, &v, 4); return b; }
inline float from_bits(uint32_t b) { float v; std::memcpy(&v, &b, 4); return v; }
inline uint32_t all_if(bool c) { return 0u - uint32_t(c); }
inline float pick(bool c, float a, float b) {
  uint32_t m = all_if(c);
  return from_bits((bits(a) & m) | (bits(b) & ~m));
}

// -- eight floats, one AVX register (GCC vector extensions; plain SSE pairs elsewhere) ------
typedef float v8 __attribute__((vector_size(32)));
inline v8 load8(const float* p) { v8 v; std::memcpy(&v, p, sizeof v); return v; }
inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// r[i][j] becomes r[j][i] (an 8 x 8 block: unpack, shuffle, swap halves)
typedef int32_t v8i __attribute__((vector_size(32)));
inline __attribute__((always_inline)) void transpose8(v8* r) {
  v8 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], v8i{0, 8, 1, 9, 4, 12, 5, 13});
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], v8i{2, 10, 3, 11, 6, 14, 7, 15});
  }
  for (int i = 0; i < 8; i += 4)
    for (int j = 0; j < 2; ++j) {
      u[i + j] = __builtin_shuffle(t[i + j], t[i + j + 2], v8i{0, 1, 8, 9, 4, 5, 12, 13});
      u[i + j + 2] = __builtin_shuffle(t[i + j], t[i + j + 2], v8i{2, 3, 10, 11, 6, 7, 14, 15});
    }
  // u[0] holds column 0 in its low half and column 4 in its high half, ...
  const int order[4] = {0, 2, 1, 3};
  for (int j = 0; j < 4; ++j) {
    r[j] = __builtin_shuffle(u[order[j]], u[order[j] + 4], v8i{0, 1, 2, 3, 8, 9, 10, 11});
    r[j + 4] = __builtin_shuffle(u[order[j]], u[order[j] + 4], v8i{4, 5, 6, 7, 12, 13, 14, 15});
  }
}

// -- 2x2 max pooling windows, eight a vector ------------------------------------------------
// The max m of each lane's window (a b / c d: two rows of two) and the offset k of its first
// maximum in row-major order: std::max's order, lane by lane (a NaN: offset 3). The one
// definition of the rule: conv.cc's pooled Conv2D writes these offsets, MaxPoolGrad routes by
// them, and MaxUnpool by the written ones, so all three agree bit for bit.
KG_INLINE void window_max(v8 a, v8 b, v8 c, v8 d, v8& m, v8i& k) {
  const v8i three = {3, 3, 3, 3, 3, 3, 3, 3};
  const v8 ab = a < b ? b : a, cd = c < d ? d : c;
  m = ab < cd ? cd : ab;
  k = c == m ? three - 1 : three;
  k = b == m ? three - 2 : k;
  k = a == m ? three - 3 : k;
}

// The windows of rows x0, x1 (16 floats each) as their four corners a b / c d
KG_INLINE void window_corners(const float* x0, const float* x1,
                                                          v8& a, v8& b, v8& c, v8& d) {
  const v8i even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = even + 1;
  const v8 lo0 = load8(x0), hi0 = load8(x0 + 8), lo1 = load8(x1), hi1 = load8(x1 + 8);
  a = __builtin_shuffle(lo0, hi0, even);
  b = __builtin_shuffle(lo0, hi0, odd);
  c = __builtin_shuffle(lo1, hi1, even);
  d = __builtin_shuffle(lo1, hi1, odd);
}

// Eight windows' gradient g to their offsets k, zeros elsewhere: rows d0, d1 (16 floats each)
KG_INLINE void unpool_8_windows(v8 g, v8i k, float* d0, float* d1) {
  const v8 zero = {};
  const v8 a = k == 0 ? g : zero, b = k == 1 ? g : zero;
  const v8 c = k == 2 ? g : zero, d = k == 3 ? g : zero;
  const v8i low = {0, 8, 1, 9, 2, 10, 3, 11}, high = low + 4;
  store8(d0, __builtin_shuffle(a, b, low));
  store8(d0 + 8, __builtin_shuffle(a, b, high));
  store8(d1, __builtin_shuffle(c, d, low));
  store8(d1 + 8, __builtin_shuffle(c, d, high));
}

// -- kernel plumbing --------------------------------------------------------------------------
inline std::vector<int64_t> shape_of(Ort::KernelContext& ctx, size_t k) {
  return ctx.GetInput(k).GetTensorTypeAndShapeInfo().GetShape();
}

[[noreturn]] inline void bad_shapes(const char* op, const std::string& expected) {
  ORT_CXX_API_THROW(std::string("kgraph.") + op + ": " + expected, ORT_INVALID_ARGUMENT);
}

// whether the node gives (optional) input k
inline bool has_input(Ort::KernelContext& ctx, size_t k) {
  return k < ctx.GetInputCount() && static_cast<const OrtValue*>(ctx.GetInput(k)) != nullptr;
}

// optional input k, a vector of `size` floats (`what` names it in the error), or nullptr
inline const float* optional_vector(Ort::KernelContext& ctx, size_t k, int64_t size,
                                    const char* op, const char* what) {
  if (!has_input(ctx, k)) return nullptr;
  if (shape_of(ctx, k) != std::vector<int64_t>{size}) bad_shapes(op, what);
  return ctx.GetInput(k).GetTensorData<float>();
}

// an optional output's data (nullptr where the node omits it)
inline float* output_data(Ort::KernelContext& ctx, size_t k, const std::vector<int64_t>& shape) {
  if (k >= ctx.GetOutputCount()) return nullptr;
  auto value = ctx.GetOutput(k, shape);
  return static_cast<const OrtValue*>(value) ? value.GetTensorMutableData<float>() : nullptr;
}

// to[k] += from[k] for k < values
KG_INLINE void add_to(float* __restrict to, const float* __restrict from, int64_t values) {
  for (int64_t k = 0; k < values; ++k) to[k] += from[k];
}

// out (width floats) = the sum of `parts` partial sums, part p at partial + p * stride, added
// in part order: a sum the tasks made part by part, the same for any number of threads
inline void add_parts(float* out, const float* partial, int64_t parts, int64_t width,
                      int64_t stride) {
  std::fill(out, out + width, 0.0f);
  for (int64_t p = 0; p < parts; ++p) add_to(out, partial + p * stride, width);
}

// below this many cells of work one thread does it all
constexpr int64_t kParallelCells = 1 << 15;

// fn(data, i) for the tasks i < tasks: on the thread pool when there are `cells` enough
inline void run_tasks(Ort::KernelContext& ctx, void (*fn)(void*, size_t), int64_t tasks,
                      int64_t cells, void* data) {
  if (tasks <= 1 || cells < kParallelCells) {
    for (int64_t i = 0; i < tasks; ++i) fn(data, size_t(i));
  } else {
    ctx.ParallelFor(fn, size_t(tasks), 0, data);
  }
}

// A float32 operator of the "kgraph" domain: kInputs inputs, kOutputs outputs, run by Kernel
// (constructed from the node's OrtKernelInfo, Compute(OrtKernelContext*)); inputs from
// kFirstOptionalInput on and outputs from kFirstOptionalOutput on may be omitted; the inputs
// and outputs whose bits are set in kOtherInputs / kOtherOutputs are of type kOther instead
// (indices, a random key, a max pooling's window offsets).
template <typename Kernel, int kInputs, int kOutputs, int kFirstOptionalInput = kInputs,
          int kFirstOptionalOutput = kOutputs, unsigned kOtherInputs = 0,
          unsigned kOtherOutputs = 0,
          ONNXTensorElementDataType kOther = ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8>
struct FloatOp
    : Ort::CustomOpBase<FloatOp<Kernel, kInputs, kOutputs, kFirstOptionalInput,
                                kFirstOptionalOutput, kOtherInputs, kOtherOutputs, kOther>,
                        Kernel> {
  explicit FloatOp(const char* name) : name_(name) {}
  void* CreateKernel(const OrtApi&, const OrtKernelInfo* info) const { return new Kernel(info); }
  const char* GetName() const { return name_; }
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
  size_t GetInputTypeCount() const { return kInputs; }
  ONNXTensorElementDataType GetInputType(size_t k) const {
    return (kOtherInputs >> k) & 1u ? kOther : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  size_t GetOutputTypeCount() const { return kOutputs; }
  ONNXTensorElementDataType GetOutputType(size_t k) const {
    return (kOtherOutputs >> k) & 1u ? kOther : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t k) const {
    return int(k) < kFirstOptionalInput ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_OPTIONAL;
  }
  OrtCustomOpInputOutputCharacteristic GetOutputCharacteristic(size_t k) const {
    return int(k) < kFirstOptionalOutput ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_OPTIONAL;
  }

 private:
  const char* name_;
};

// dx (planes, h, w) = the gradient of a 2x2 max pooling at stride 2 from the pooled one g
// (planes, oh, ow) and each window's first-maximum offset (uint8 0 .. 3, row-major): g to that
// offset, zeros elsewhere and past the last window (kgraph.MaxUnpool; conv.cc's operators that
// take a pooled gradient)
void unpool_2x2(Ort::KernelContext& ctx, const float* g, const uint8_t* index, int64_t planes,
                int64_t oh, int64_t ow, int64_t h, int64_t w, float* dx);

// Adds the LSTM operators (lstm.cc) and the convolutions (conv.cc) to the domain.
void add_lstm_ops(Ort::CustomOpDomain& domain);
void add_conv_ops(Ort::CustomOpDomain& domain);

}  // namespace kgops
