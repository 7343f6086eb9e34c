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
#else
#define KG_CLONES
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

// A float32 operator of the "kgraph" domain: kInputs inputs, kOutputs outputs, run by Kernel
// (constructed from the node's OrtKernelInfo, Compute(OrtKernelContext*)); inputs from
// kFirstOptionalInput on and outputs from kFirstOptionalOutput on may be omitted.
template <typename Kernel, int kInputs, int kOutputs, int kFirstOptionalInput = kInputs,
          int kFirstOptionalOutput = kOutputs>
struct FloatOp : Ort::CustomOpBase<
                     FloatOp<Kernel, kInputs, kOutputs, kFirstOptionalInput, kFirstOptionalOutput>,
                     Kernel> {
  explicit FloatOp(const char* name) : name_(name) {}
  void* CreateKernel(const OrtApi&, const OrtKernelInfo* info) const { return new Kernel(info); }
  const char* GetName() const { return name_; }
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
  size_t GetInputTypeCount() const { return kInputs; }
  ONNXTensorElementDataType GetInputType(size_t) const {
    return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  size_t GetOutputTypeCount() const { return kOutputs; }
  ONNXTensorElementDataType GetOutputType(size_t) const {
    return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
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

// Adds the LSTM operators (lstm.cc) to the domain.
void add_lstm_ops(Ort::CustomOpDomain& domain);

}  // namespace kgops
