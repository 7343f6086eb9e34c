// kgraph's operators for onnxruntime (ONNX domain "kgraph"): the kernels a training step needs
// that standard ONNX can only spell as chains of passes over memory. Each has a numpy
// reference and a standard-ONNX expansion in kgraph/ops (the expansion is what every other
// consumer of the graph sees: TVM, exported files, an onnxruntime without this library);
// runtime/native_ops.py builds nothing, it only finds this library and registers it.
//
//   MaxPoolGrad(g, x)            the max-pooling gradient, 2-D, channels first or last: each
//                                window's gradient goes to its FIRST maximum in row-major
//                                order (TF's MaxPoolGrad). attrs kernel_shape, strides,
//                                pads (begin h, begin w, end h, end w), channels_last.
//   MaxUnpool(g, index)          the gradient of a 2x2 max pooling at stride 2 (channels
//                                first) from the offset of each window's first maximum, which
//                                Conv2D writes with attr pool (conv.cc). attr shape (h, w).
//   RandomUniformLike(like, key)  uniform [0, 1) noise of like's shape (float32 like): the
//                                counter-based hash of kgraph/ops/random.py, bit for bit.
//                                attr seed.
//   BatchTranspose(x)            Transpose(x, (0, k + 1, ..., r, 1, ..., k)), attr split = k:
//                                the layout change between channels first and last.
//   LSTMGates, LSTMGatesGrad, LSTMSequence, LSTMSequenceGrad   Keras' LSTM: lstm.cc.
//   Conv2D, ConvTranspose2D, Conv2DKernelGrad   2-D convolutions and their gradients: conv.cc.
//   Im2ColRows(x)                the windows of a channels-first 2-D input (zero padded) as
//                                rows: (window offset, channel) by (image, output site), what
//                                a convolution's kernel gradient multiplies by the output
//                                gradient. attrs kernel_shape, strides, dilations, pads, sizes
//                                (the output's spatial size).
//   AdamUpdate(var, g, m, v, alpha, after?)  Keras 3's Adam step of one variable in one pass:
//                                m' = m + (g - m) decay_m, v' = v + (g² - v) decay_v,
//                                var' = var - (m' alpha) / (sqrt(v') + epsilon), the float32
//                                operations of the separate ops, in their order (built
//                                without FMA contraction: equal bit for bit). attrs decay_m,
//                                decay_v, epsilon; outputs var', m', v', which may be var, m,
//                                v's own buffers (updated in place: each element is read
//                                before it is written). `after` is not read: a tensor the
//                                update must wait for (compiler/onnx/emit._updates_in_place).
//   SoftmaxGrad(g, y)            a softmax's gradient over the last axis, y (g - sum(g y)),
//                                from the softmax y alone (the forward is onnxruntime's own).
//   LayerNorm(x, gamma, beta)    Keras' layer normalization over the last axis: per row the
//                                mean and two-pass variance, inv = gamma / sqrt(var + eps),
//                                y = x inv + (beta - mean inv). attr epsilon.
//   LayerNormGrad(dy, x, gamma)  its gradient from the input (the statistics recomputed):
//                                dx, dgamma, dbeta (the sums over rows per chunk of rows,
//                                chunks added in order: the same for any thread count).
//   ReluGrad(g, y)               a ReLU's gradient g * (y > 0 ? 1 : 0) from its output y, of
//                                one shape: the Greater, Cast and Mul it replaces, bit for bit
//                                (a multiply, as TF's ReluGrad: NaN in g stays NaN). Optional
//                                output: that gradient summed over every axis but the last,
//                                keepdims (the bias gradient of the layer before the ReLU).
//   ScatterAddRows(updates, indices, dims)   zeros of shape dims, each update row added at
//                                its index (int64, negative from the end) in index order:
//                                an embedding's gradient, deterministic (onnxruntime's
//                                ScatterND "add" is not, nor correct, on several threads).
//
// float32 data only. Built by setup.py as an optional extension against the vendored C API
// headers of onnxruntime 1.21 (third_party/onnxruntime): it loads in any onnxruntime >= 1.21.
#include "ortops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace {

using namespace kgops;

// -- MaxPoolGrad -----------------------------------------------------------------------
struct PoolGeometry {
  int64_t n, channels, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
};

struct PoolGradTask {
  const PoolGeometry* geo;
  const float* g;
  const float* x;
  float* dx;
};

// The input rows (or columns) [lo, hi) of window i along an axis: inside the input, padding cut.
inline std::pair<int64_t, int64_t> window_span(int64_t i, int64_t stride, int64_t pad,
                                               int64_t kernel, int64_t size) {
  return {std::max<int64_t>(i * stride - pad, 0), std::min(i * stride - pad + kernel, size)};
}

// fn(j, x0, x1, g, d0, d1) for groups of eight windows of a row of n covering it (rows x0, x1
// of the input, 2n floats; g, n floats; d0, d1, 2n floats; j the group's first window): a
// last group that would run past the row overlaps the one before it (a window's outputs
// depend on its inputs alone: written twice, the same); a row of fewer than eight windows
// goes through zero-padded copies, only its n windows copied back
template <typename Fn>
KG_INLINE void by_8_windows(const float* x0, const float* x1, const float* g, float* d0,
                            float* d1, int64_t n, Fn fn) {
  if (n >= 8) {
    for (int64_t j = 0;; j = std::min(j + 8, n - 8)) {
      fn(j, x0 + 2 * j, x1 + 2 * j, g + j, d0 + 2 * j, d1 + 2 * j);
      if (j == n - 8) return;
    }
  }
  float t0[16] = {}, t1[16] = {}, tg[8] = {}, o0[16], o1[16];
  if (x0 != nullptr) {
    std::memcpy(t0, x0, sizeof(float) * size_t(2 * n));
    std::memcpy(t1, x1, sizeof(float) * size_t(2 * n));
  }
  std::memcpy(tg, g, sizeof(float) * size_t(n));
  fn(0, t0, t1, tg, o0, o1);
  std::memcpy(d0, o0, sizeof(float) * size_t(2 * n));
  std::memcpy(d1, o1, sizeof(float) * size_t(2 * n));
}

// One row of 2x2 windows tiling two input rows: all four outputs written, no scatter.
KG_CLONES void tile_row_2x2(const float* x0, const float* x1, const float* gi, float* d0,
                            float* d1, int64_t n) {
  by_8_windows(x0, x1, gi, d0, d1, n, [](int64_t, const float* r0, const float* r1,
                                         const float* g, float* o0, float* o1) {
    v8 a, b, c, d, m;
    v8i k;
    window_corners(r0, r1, a, b, c, d);
    window_max(a, b, c, d, m, k);
    unpool_8_windows(load8(g), k, o0, o1);
  });
}

// Channels first: one (image, channel) plane per task.
void pool_grad_plane(void* data, size_t plane) {
  const auto& t = *static_cast<PoolGradTask*>(data);
  const PoolGeometry& p = *t.geo;
  const float* x = t.x + plane * p.h * p.w;
  const float* g = t.g + plane * p.oh * p.ow;
  float* dx = t.dx + plane * p.h * p.w;
  bool tiles = p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0;
  if (tiles) {  // rows and columns past the last window get no gradient
    for (int64_t i = 0; i < p.oh; ++i) {
      float* d0 = dx + 2 * i * p.w;
      tile_row_2x2(x + 2 * i * p.w, x + (2 * i + 1) * p.w, g + i * p.ow, d0, d0 + p.w, p.ow);
      for (int64_t c = 2 * p.ow; c < p.w; ++c) d0[c] = d0[p.w + c] = 0.0f;
    }
    std::memset(dx + 2 * p.oh * p.w, 0, sizeof(float) * (p.h - 2 * p.oh) * p.w);
    return;
  }
  std::memset(dx, 0, sizeof(float) * p.h * p.w);
  for (int64_t i = 0; i < p.oh; ++i) {
    const auto [r0, r1] = window_span(i, p.sh, p.ph, p.kh, p.h);
    for (int64_t j = 0; j < p.ow; ++j) {
      const auto [c0, c1] = window_span(j, p.sw, p.pw, p.kw, p.w);
      int64_t at = r0 * p.w + c0;
      float best = x[at];
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) {
          float v = x[r * p.w + c];
          bool take = v > best;
          best = take ? v : best;
          at = take ? r * p.w + c : at;
        }
      dx[at] += g[i * p.ow + j];
    }
  }
}

// The channels-last window loop: the running maximum and its window offset per channel.
KG_CLONES void window_max_step(const float* __restrict v, float* __restrict best,
                               int32_t* __restrict at, int32_t k, int64_t channels) {
  for (int64_t c = 0; c < channels; ++c) {
    bool take = v[c] > best[c];
    best[c] = take ? v[c] : best[c];
    at[c] = take ? k : at[c];
  }
}

KG_CLONES void window_route(const float* __restrict g, const int32_t* __restrict at,
                            float* __restrict d, int32_t k, int64_t channels) {
  for (int64_t c = 0; c < channels; ++c) d[c] += at[c] == k ? g[c] : 0.0f;
}

// Channels last: one image per task, the channels vectorised.
void pool_grad_image(void* data, size_t image) {
  const auto& t = *static_cast<PoolGradTask*>(data);
  const PoolGeometry& p = *t.geo;
  const int64_t ch = p.channels;
  const float* x = t.x + image * p.h * p.w * ch;
  const float* g = t.g + image * p.oh * p.ow * ch;
  float* dx = t.dx + image * p.h * p.w * ch;
  std::memset(dx, 0, sizeof(float) * p.h * p.w * ch);
  std::vector<float> best(ch);
  std::vector<int32_t> at(ch);
  for (int64_t i = 0; i < p.oh; ++i) {
    const auto [r0, r1] = window_span(i, p.sh, p.ph, p.kh, p.h);
    for (int64_t j = 0; j < p.ow; ++j) {
      const auto [c0, c1] = window_span(j, p.sw, p.pw, p.kw, p.w);
      std::memcpy(best.data(), x + (r0 * p.w + c0) * ch, sizeof(float) * ch);
      std::fill(at.begin(), at.end(), 0);
      int32_t k = 0;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c, ++k)
          if (k) window_max_step(x + (r * p.w + c) * ch, best.data(), at.data(), k, ch);
      const float* gij = g + (i * p.ow + j) * ch;
      k = 0;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c, ++k)
          window_route(gij, at.data(), dx + (r * p.w + c) * ch, k, ch);
    }
  }
}

struct MaxPoolGradKernel {
  PoolGeometry geo{};
  bool channels_last = false;

  explicit MaxPoolGradKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    auto kernel = ki.GetAttributes<int64_t>("kernel_shape");
    auto strides = ki.GetAttributes<int64_t>("strides");
    auto pads = ki.GetAttributes<int64_t>("pads");
    if (kernel.size() != 2 || strides.size() != 2 || pads.size() != 4)
      ORT_CXX_API_THROW("kgraph.MaxPoolGrad pools over 2 spatial dims", ORT_INVALID_ARGUMENT);
    channels_last = ki.GetAttribute<int64_t>("channels_last") != 0;
    geo.kh = kernel[0], geo.kw = kernel[1], geo.sh = strides[0], geo.sw = strides[1];
    geo.ph = pads[0], geo.pw = pads[1];
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    auto g = ctx.GetInput(0);
    auto x = ctx.GetInput(1);
    auto xs = x.GetTensorTypeAndShapeInfo().GetShape();
    auto gs = g.GetTensorTypeAndShapeInfo().GetShape();
    if (xs.size() != 4 || gs.size() != 4)
      ORT_CXX_API_THROW("kgraph.MaxPoolGrad takes rank-4 tensors", ORT_INVALID_ARGUMENT);
    PoolGeometry p = geo;
    p.n = xs[0];
    if (channels_last) {
      p.h = xs[1], p.w = xs[2], p.channels = xs[3], p.oh = gs[1], p.ow = gs[2];
    } else {
      p.channels = xs[1], p.h = xs[2], p.w = xs[3], p.oh = gs[2], p.ow = gs[3];
    }
    auto out = ctx.GetOutput(0, xs);
    PoolGradTask task{&p, g.GetTensorData<float>(), x.GetTensorData<float>(),
                      out.GetTensorMutableData<float>()};
    if (p.n * p.channels == 0) return;
    if (channels_last)
      ctx.ParallelFor(pool_grad_image, size_t(p.n), 0, &task);
    else
      ctx.ParallelFor(pool_grad_plane, size_t(p.n * p.channels), 0, &task);
  }
};

// -- MaxUnpool -------------------------------------------------------------------------------
// The gradient of a 2x2 max pooling at stride 2, channels first, from each window's offset of
// its first maximum (uint8 0 .. 3, row-major; conv.cc's Conv2D writes them with attr pool):
// g to that offset of the window, zeros elsewhere and past the last window.
struct UnpoolTask {
  int64_t h, w, oh, ow, planes_per_task, planes;
  const float* g;
  const uint8_t* index;
  float* dx;
};

KG_CLONES void unpool_planes(void* data, size_t task) {
  const auto& t = *static_cast<const UnpoolTask*>(data);
  const int64_t first = int64_t(task) * t.planes_per_task;
  const int64_t last = std::min(t.planes, first + t.planes_per_task);
  for (int64_t plane = first; plane < last; ++plane) {
    float* dx = t.dx + plane * t.h * t.w;
    for (int64_t i = 0; i < t.oh; ++i) {
      const float* g = t.g + (plane * t.oh + i) * t.ow;
      const uint8_t* k = t.index + (plane * t.oh + i) * t.ow;
      const int64_t ow = t.ow;
      float *d0 = dx + 2 * i * t.w, *d1 = d0 + t.w;
      by_8_windows(nullptr, nullptr, g, d0, d1, ow, [k, ow](int64_t j, const float*,
                                                            const float*, const float* gj,
                                                            float* o0, float* o1) {
        v8i at = {};  // (windows past a short row's last: offset 0 of a zero gradient)
        for (int64_t l = 0; l < 8 && j + l < ow; ++l) at[l] = k[j + l];
        unpool_8_windows(load8(gj), at, o0, o1);
      });
      for (int64_t c = 2 * t.ow; c < t.w; ++c) d0[c] = d1[c] = 0.0f;
    }
    std::memset(dx + 2 * t.oh * t.w, 0, sizeof(float) * size_t((t.h - 2 * t.oh) * t.w));
  }
}

}  // namespace

void kgops::unpool_2x2(Ort::KernelContext& ctx, const float* g, const uint8_t* index,
                       int64_t planes, int64_t oh, int64_t ow, int64_t h, int64_t w, float* dx) {
  UnpoolTask t{h, w, oh, ow, 8, planes, g, index, dx};
  run_tasks(ctx, unpool_planes, (planes + 7) / 8, planes * h * w, &t);
}

namespace {

struct MaxUnpoolKernel {
  int64_t h, w;  // attr shape: the unpooled plane

  explicit MaxUnpoolKernel(const OrtKernelInfo* info) {
    auto shape = Ort::ConstKernelInfo(info).GetAttributes<int64_t>("shape");
    if (shape.size() != 2 || shape[0] < 0 || shape[1] < 0)
      ORT_CXX_API_THROW("kgraph.MaxUnpool: shape (h, w) expected", ORT_INVALID_ARGUMENT);
    h = shape[0], w = shape[1];
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto gs = shape_of(ctx, 0);
    if (gs.size() != 4 || shape_of(ctx, 1) != gs || gs[2] != h / 2 || gs[3] != w / 2)
      bad_shapes("MaxUnpool", "g (n, c, h / 2, w / 2) and window offsets of its shape");
    float* dx = ctx.GetOutput(0, {gs[0], gs[1], h, w}).GetTensorMutableData<float>();
    unpool_2x2(ctx, ctx.GetInput(0).GetTensorData<float>(),
               ctx.GetInput(1).GetTensorData<uint8_t>(), gs[0] * gs[1], gs[2], gs[3], h, w, dx);
  }
};

// -- RandomUniformLike ------------------------------------------------------------------------
// kgraph/ops/random.py's counter-based noise: element i of the output is the top 24 bits of
// lowbias32(i ^ lowbias32(key * golden + seed)) over 2^24, uint32 wrap-around, bit for bit the
// op's standard-ONNX expansion (a dozen elementwise passes).
inline uint32_t lowbias32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x7FEB352Du;
  h ^= h >> 15;
  h *= 0x846CA68Bu;
  return h ^ (h >> 16);
}

struct UniformTask {
  uint32_t mixed;
  int64_t size, chunk;
  float* out;
};

KG_CLONES void uniform_chunk(void* data, size_t task) {
  const auto& t = *static_cast<const UniformTask*>(data);
  const int64_t first = int64_t(task) * t.chunk, last = std::min(t.size, first + t.chunk);
  for (int64_t i = first; i < last; ++i)
    t.out[i] = float(lowbias32(uint32_t(i) ^ t.mixed) >> 8) * (1.0f / 16777216.0f);
}

struct RandomUniformKernel {
  uint32_t seed;

  explicit RandomUniformKernel(const OrtKernelInfo* info)
      : seed(uint32_t(Ort::ConstKernelInfo(info).GetAttribute<int64_t>("seed"))) {}

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto shape = shape_of(ctx, 0);
    if (ctx.GetInput(1).GetTensorTypeAndShapeInfo().GetElementCount() != 1)
      bad_shapes("RandomUniformLike", "a scalar key");
    const uint32_t key = *ctx.GetInput(1).GetTensorData<uint32_t>();
    float* out = ctx.GetOutput(0, shape).GetTensorMutableData<float>();
    const int64_t size = int64_t(ctx.GetInput(0).GetTensorTypeAndShapeInfo().GetElementCount());
    UniformTask t{lowbias32(key * 0x9E3779B9u + seed), size, 8192, out};
    run_tasks(ctx, uniform_chunk, (size + t.chunk - 1) / t.chunk, size, &t);
  }
};

// -- BatchTranspose -----------------------------------------------------------------------------
// x (d0, d1, ..., dr) -> Transpose(x, perm (0, k + 1, ..., r, 1, ..., k)) for attr split = k:
// each x[b] a (d1 ... dk) by (dk+1 ... dr) matrix, transposed; the layout changes between
// channels first and channels last (onnxruntime's Transpose of such a perm runs one element at
// a time: 0.5 ms for a 64 x 64 x 5 x 5 activation, against 8 x 8 blocks in registers here).
struct BatchTransposeTask {
  int64_t rows, cols;  // of each batch item
  const float* x;
  float* y;
};

KG_CLONES void batch_transpose_item(void* data, size_t b) {
  const auto& t = *static_cast<const BatchTransposeTask*>(data);
  const float* x = t.x + int64_t(b) * t.rows * t.cols;
  float* y = t.y + int64_t(b) * t.rows * t.cols;
  const int64_t r8 = t.rows / 8 * 8, c8 = t.cols / 8 * 8;
  for (int64_t r = 0; r < r8; r += 8)
    for (int64_t c = 0; c < c8; c += 8) {
      v8 block[8];
      for (int64_t j = 0; j < 8; ++j) block[j] = load8(x + (r + j) * t.cols + c);
      transpose8(block);
      for (int64_t j = 0; j < 8; ++j) store8(y + (c + j) * t.rows + r, block[j]);
    }
  for (int64_t r = 0; r < t.rows; ++r)  // the rows and columns past the blocks
    for (int64_t c = r < r8 ? c8 : 0; c < t.cols; ++c) y[c * t.rows + r] = x[r * t.cols + c];
}

struct BatchTransposeKernel {
  int64_t split;

  explicit BatchTransposeKernel(const OrtKernelInfo* info)
      : split(Ort::ConstKernelInfo(info).GetAttribute<int64_t>("split")) {}

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto xs = shape_of(ctx, 0);
    if (split < 1 || int64_t(xs.size()) < split + 2)
      bad_shapes("BatchTranspose", "a batch axis, then split >= 1 axes and at least one more");
    std::vector<int64_t> ys{xs[0]};
    ys.insert(ys.end(), xs.begin() + split + 1, xs.end());
    ys.insert(ys.end(), xs.begin() + 1, xs.begin() + split + 1);
    int64_t rows = 1, cols = 1;
    for (int64_t k = 1; k < int64_t(xs.size()); ++k) (k <= split ? rows : cols) *= xs[size_t(k)];
    float* y = ctx.GetOutput(0, ys).GetTensorMutableData<float>();
    BatchTransposeTask t{rows, cols, ctx.GetInput(0).GetTensorData<float>(), y};
    run_tasks(ctx, batch_transpose_item, xs[0], xs[0] * rows * cols, &t);
  }
};

// -- Im2ColRows ------------------------------------------------------------------------------
struct Im2ColTask {
  int64_t n, channels, h, w, oh, ow, kw, sh, sw, dh, dw, ph, pw;
  const float* x;
  float* rows;
};

// One output row: window offset (i, j) of channel c, over every image and output site.
void im2col_row(void* data, size_t row) {
  const auto& t = *static_cast<Im2ColTask*>(data);
  const int64_t c = int64_t(row) % t.channels, offset = int64_t(row) / t.channels;
  const int64_t di = (offset / t.kw) * t.dh - t.ph, dj = (offset % t.kw) * t.dw - t.pw;
  float* out = t.rows + int64_t(row) * t.n * t.oh * t.ow;
  // the output columns whose input column is inside the image: [j0, j1)
  int64_t j0 = 0, j1 = t.ow;
  while (j0 < t.ow && j0 * t.sw + dj < 0) ++j0;
  while (j1 > j0 && (j1 - 1) * t.sw + dj >= t.w) --j1;
  for (int64_t img = 0; img < t.n; ++img) {
    const float* plane = t.x + (img * t.channels + c) * t.h * t.w;
    for (int64_t i = 0; i < t.oh; ++i, out += t.ow) {
      const int64_t r = i * t.sh + di;
      if (r < 0 || r >= t.h) {
        std::memset(out, 0, sizeof(float) * t.ow);
        continue;
      }
      const float* src = plane + r * t.w + dj;
      for (int64_t j = 0; j < j0; ++j) out[j] = 0.0f;
      if (t.sw == 1) {
        std::memcpy(out + j0, src + j0, sizeof(float) * (j1 - j0));
      } else {
        for (int64_t j = j0; j < j1; ++j) out[j] = src[j * t.sw];
      }
      for (int64_t j = j1; j < t.ow; ++j) out[j] = 0.0f;
    }
  }
}

struct Im2ColKernel {
  std::vector<int64_t> kernel, strides, dilations, pads, sizes;

  explicit Im2ColKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    kernel = ki.GetAttributes<int64_t>("kernel_shape");
    strides = ki.GetAttributes<int64_t>("strides");
    dilations = ki.GetAttributes<int64_t>("dilations");
    pads = ki.GetAttributes<int64_t>("pads");
    sizes = ki.GetAttributes<int64_t>("sizes");
    if (kernel.size() != 2 || strides.size() != 2 || dilations.size() != 2 ||
        pads.size() != 4 || sizes.size() != 2)
      ORT_CXX_API_THROW("kgraph.Im2ColRows takes 2 spatial dims", ORT_INVALID_ARGUMENT);
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    auto x = ctx.GetInput(0);
    auto xs = x.GetTensorTypeAndShapeInfo().GetShape();
    if (xs.size() != 4)
      ORT_CXX_API_THROW("kgraph.Im2ColRows takes a rank-4 input", ORT_INVALID_ARGUMENT);
    const int64_t window = kernel[0] * kernel[1];
    auto rows = ctx.GetOutput(0, {window * xs[1], xs[0] * sizes[0] * sizes[1]});
    Im2ColTask t{xs[0], xs[1], xs[2], xs[3], sizes[0], sizes[1], kernel[1], strides[0],
                 strides[1], dilations[0], dilations[1], pads[0], pads[1],
                 x.GetTensorData<float>(), rows.GetTensorMutableData<float>()};
    if (window * xs[1] != 0 && xs[0] != 0)
      ctx.ParallelFor(im2col_row, size_t(window * xs[1]), 0, &t);
  }
};

// -- AdamUpdate -------------------------------------------------------------------------------
struct AdamTask {
  const float *var, *g, *m, *v;
  float alpha, decay_m, decay_v, epsilon;
  float *var_out, *m_out, *v_out;
  int64_t size;
};

constexpr int64_t kAdamBlock = 1 << 14;  // elements per thread-pool task

// The pointers are parameters: GCC 12 does not vectorise this loop over restrict locals
// copied from the task's fields ("no vectype"), and scalar it ran ~3x slower. An output may be
// its input's buffer (an update in place): each element is read, then written, and no other
// element is read after it, so the restrict promise changes nothing the loop does.
KG_CLONES void adam_values(const float* __restrict var, const float* __restrict g,
                           const float* __restrict m, const float* __restrict v,
                           float* __restrict var_out, float* __restrict m_out,
                           float* __restrict v_out, float alpha, float dm, float dv, float eps,
                           int64_t count) {
  for (int64_t k = 0; k < count; ++k) {
    float m_new = m[k] + (g[k] - m[k]) * dm;
    float v_new = v[k] + (g[k] * g[k] - v[k]) * dv;
    m_out[k] = m_new;
    v_out[k] = v_new;
    var_out[k] = var[k] - (m_new * alpha) / (std::sqrt(v_new) + eps);
  }
}

void adam_block(const AdamTask& t, int64_t begin, int64_t end) {
  adam_values(t.var + begin, t.g + begin, t.m + begin, t.v + begin, t.var_out + begin,
              t.m_out + begin, t.v_out + begin, t.alpha, t.decay_m, t.decay_v, t.epsilon,
              end - begin);
}

void adam_task(void* data, size_t block) {
  const auto& t = *static_cast<AdamTask*>(data);
  int64_t begin = int64_t(block) * kAdamBlock;
  adam_block(t, begin, std::min(begin + kAdamBlock, t.size));
}

struct AdamUpdateKernel {
  float decay_m, decay_v, epsilon;

  explicit AdamUpdateKernel(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo ki(info);
    decay_m = ki.GetAttribute<float>("decay_m");
    decay_v = ki.GetAttribute<float>("decay_v");
    epsilon = ki.GetAttribute<float>("epsilon");
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    auto var = ctx.GetInput(0);
    auto info = var.GetTensorTypeAndShapeInfo();
    auto shape = info.GetShape();
    const int64_t size = int64_t(info.GetElementCount());
    for (size_t k = 1; k < 4; ++k)
      if (ctx.GetInput(k).GetTensorTypeAndShapeInfo().GetShape() != shape)
        ORT_CXX_API_THROW("kgraph.AdamUpdate: var, g, m, v must have one shape",
                          ORT_INVALID_ARGUMENT);
    auto alpha = ctx.GetInput(4);
    if (alpha.GetTensorTypeAndShapeInfo().GetElementCount() != 1)
      ORT_CXX_API_THROW("kgraph.AdamUpdate: alpha must be a scalar", ORT_INVALID_ARGUMENT);
    AdamTask t{var.GetTensorData<float>(), ctx.GetInput(1).GetTensorData<float>(),
               ctx.GetInput(2).GetTensorData<float>(), ctx.GetInput(3).GetTensorData<float>(),
               alpha.GetTensorData<float>()[0], decay_m, decay_v, epsilon,
               ctx.GetOutput(0, shape).GetTensorMutableData<float>(),
               ctx.GetOutput(1, shape).GetTensorMutableData<float>(),
               ctx.GetOutput(2, shape).GetTensorMutableData<float>(), size};
    const int64_t blocks = (size + kAdamBlock - 1) / kAdamBlock;
    if (blocks <= 1)
      adam_block(t, 0, size);
    else
      ctx.ParallelFor(adam_task, size_t(blocks), 0, &t);
  }
};

// -- SoftmaxGrad over the last axis ------------------------------------------------------------
struct SoftmaxGradTask {
  const float *g, *y;
  float* dx;
  int64_t width, rows, chunk;
};

constexpr int64_t kChunkValues = 1 << 13;  // values per thread-pool task
constexpr int64_t kLanes = 8;              // one AVX register of partial sums

// rows of `width` values per thread-pool task (a task per chunk of rows, not per row)
inline int64_t rows_per_chunk(int64_t width) {
  return std::max<int64_t>(1, kChunkValues / std::max<int64_t>(width, 1));
}

// dx = y (g - sum(g y)) for one row; the sum in 8 lanes (a single running sum is a chain of
// dependent adds the compiler may not reorder), combined at the end
KG_CLONES void softmax_grad_row(const float* __restrict g, const float* __restrict y,
                                float* __restrict dx, int64_t w) {
  float lane[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= w; k += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lane[j] += g[k + j] * y[k + j];
  float dot = 0.0f;
  for (; k < w; ++k) dot += g[k] * y[k];
  for (int64_t j = 0; j < kLanes; ++j) dot += lane[j];
  for (k = 0; k < w; ++k) dx[k] = y[k] * (g[k] - dot);
}

// rows [n * chunk, (n + 1) * chunk): a thread-pool task per chunk of rows, not per row
void softmax_grad_rows(void* data, size_t n) {
  const auto& t = *static_cast<SoftmaxGradTask*>(data);
  const int64_t end = std::min((int64_t(n) + 1) * t.chunk, t.rows);
  for (int64_t r = int64_t(n) * t.chunk; r < end; ++r)
    softmax_grad_row(t.g + r * t.width, t.y + r * t.width, t.dx + r * t.width, t.width);
}

struct SoftmaxGradKernel {
  explicit SoftmaxGradKernel(const OrtKernelInfo*) {}
  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    auto g = ctx.GetInput(0), y = ctx.GetInput(1);
    auto info = y.GetTensorTypeAndShapeInfo();
    auto shape = info.GetShape();
    if (g.GetTensorTypeAndShapeInfo().GetShape() != shape)
      ORT_CXX_API_THROW("kgraph.SoftmaxGrad: the gradient and the softmax must have one "
                        "shape", ORT_INVALID_ARGUMENT);
    const int64_t size = int64_t(info.GetElementCount());
    const int64_t width = shape.empty() ? 1 : shape.back();
    auto dx = ctx.GetOutput(0, shape);
    if (size == 0 || width == 0) return;
    const int64_t rows = size / width, chunk = rows_per_chunk(width);
    SoftmaxGradTask t{g.GetTensorData<float>(), y.GetTensorData<float>(),
                      dx.GetTensorMutableData<float>(), width, rows, chunk};
    const int64_t chunks = (rows + chunk - 1) / chunk;
    if (chunks == 1)
      softmax_grad_rows(&t, 0);
    else
      ctx.ParallelFor(softmax_grad_rows, size_t(chunks), 0, &t);
  }
};

// -- LayerNorm, LayerNormGrad over the last axis ---------------------------------------------
// The sum of a row in kLanes partial sums (see softmax_grad_row), then combined. The row
// helpers inline into layer_norm_rows' clones (a target_clones function is not inlined).
KG_INLINE float row_sum(const float* __restrict a, int64_t w) {
  float lane[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= w; k += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lane[j] += a[k + j];
  float sum = 0.0f;
  for (; k < w; ++k) sum += a[k];
  for (int64_t j = 0; j < kLanes; ++j) sum += lane[j];
  return sum;
}

struct LayerNormTask {
  const float *x, *gamma, *beta, *dy;
  float *y, *dx, *partial;  // partial: the gradient's (dgamma, dbeta) sums, 2 width per chunk
  float epsilon;
  int64_t width, rows, chunk;
};

// a row's mean and 1 / sqrt(variance + epsilon), the variance two-pass; scratch: width floats
KG_INLINE void row_stats(const float* x, int64_t w, float epsilon, float* scratch, float* mean,
                         float* inv) {
  const float m = row_sum(x, w) / float(w);
  for (int64_t k = 0; k < w; ++k) scratch[k] = (x[k] - m) * (x[k] - m);
  *mean = m;
  *inv = 1.0f / std::sqrt(row_sum(scratch, w) / float(w) + epsilon);
}

KG_INLINE void layer_norm_row(const float* __restrict x, const float* __restrict gamma,
                              const float* __restrict beta, float* __restrict y, float mean,
                              float inv, int64_t w) {
  for (int64_t k = 0; k < w; ++k) {
    const float scaled = inv * gamma[k];
    y[k] = x[k] * scaled + (beta[k] - mean * scaled);
  }
}

// dx of one row and its terms of dgamma, dbeta; scratch: 2 width floats (d, then d xhat)
KG_INLINE void layer_norm_grad_row(const float* __restrict dy, const float* __restrict x,
                                   const float* __restrict gamma, float* __restrict dx,
                                   float* __restrict dgamma, float* __restrict dbeta,
                                   float* __restrict d, float* __restrict dxhat, float mean,
                                   float inv, int64_t w) {
  for (int64_t k = 0; k < w; ++k) {
    const float xhat = (x[k] - mean) * inv;
    d[k] = dy[k] * gamma[k];
    dxhat[k] = d[k] * xhat;
    dgamma[k] += dy[k] * xhat;
    dbeta[k] += dy[k];
  }
  const float mean_d = row_sum(d, w) / float(w), mean_dxhat = row_sum(dxhat, w) / float(w);
  for (int64_t k = 0; k < w; ++k)
    dx[k] = inv * (d[k] - mean_d - (x[k] - mean) * inv * mean_dxhat);
}

KG_CLONES void layer_norm_rows(void* data, size_t n) {
  const auto& t = *static_cast<LayerNormTask*>(data);
  const int64_t w = t.width, end = std::min((int64_t(n) + 1) * t.chunk, t.rows);
  std::vector<float> scratch(size_t(2 * w));
  float* sums = t.partial ? t.partial + int64_t(n) * 2 * w : nullptr;
  if (sums != nullptr) std::fill(sums, sums + 2 * w, 0.0f);
  for (int64_t r = int64_t(n) * t.chunk; r < end; ++r) {
    const float* x = t.x + r * w;
    float mean, inv;
    row_stats(x, w, t.epsilon, scratch.data(), &mean, &inv);
    if (sums == nullptr)
      layer_norm_row(x, t.gamma, t.beta, t.y + r * w, mean, inv, w);
    else
      layer_norm_grad_row(t.dy + r * w, x, t.gamma, t.dx + r * w, sums, sums + w,
                          scratch.data(), scratch.data() + w, mean, inv, w);
  }
}

// (rows, width) of input k, a float tensor whose last axis the vector inputs `vectors` span
void layer_norm_shape(Ort::KernelContext& ctx, size_t k, std::initializer_list<size_t> vectors,
                      const char* op, int64_t* rows, int64_t* width) {
  const auto shape = shape_of(ctx, k);
  bool ok = !shape.empty();
  *width = ok ? shape.back() : 0;
  for (size_t v : vectors) ok = ok && shape_of(ctx, v) == std::vector<int64_t>{*width};
  if (!ok) bad_shapes(op, "an input with a last axis and vectors of its width expected");
  *rows = *width ? int64_t(ctx.GetInput(k).GetTensorTypeAndShapeInfo().GetElementCount()) /
                       *width
                 : 0;
}

void run_layer_norm(Ort::KernelContext& ctx, LayerNormTask& t) {
  const int64_t chunks = (t.rows + t.chunk - 1) / t.chunk;
  run_tasks(ctx, layer_norm_rows, chunks, t.rows * t.width, &t);
}

struct LayerNormAttrs {
  float epsilon;
  explicit LayerNormAttrs(const OrtKernelInfo* info)
      : epsilon(Ort::ConstKernelInfo(info).GetAttribute<float>("epsilon")) {}
};

struct LayerNormKernel : LayerNormAttrs {
  using LayerNormAttrs::LayerNormAttrs;
  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    int64_t rows, width;
    layer_norm_shape(ctx, 0, {1, 2}, "LayerNorm", &rows, &width);
    float* y = ctx.GetOutput(0, shape_of(ctx, 0)).GetTensorMutableData<float>();
    LayerNormTask t{ctx.GetInput(0).GetTensorData<float>(),
                    ctx.GetInput(1).GetTensorData<float>(),
                    ctx.GetInput(2).GetTensorData<float>(), nullptr, y, nullptr, nullptr,
                    epsilon, width, rows, rows_per_chunk(width)};
    if (rows > 0) run_layer_norm(ctx, t);
  }
};

struct LayerNormGradKernel : LayerNormAttrs {
  using LayerNormAttrs::LayerNormAttrs;
  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    int64_t rows, width;
    layer_norm_shape(ctx, 1, {2}, "LayerNormGrad", &rows, &width);
    if (shape_of(ctx, 0) != shape_of(ctx, 1))
      bad_shapes("LayerNormGrad", "a gradient of the input's shape");
    float* dx = ctx.GetOutput(0, shape_of(ctx, 1)).GetTensorMutableData<float>();
    float* dgamma = ctx.GetOutput(1, {width}).GetTensorMutableData<float>();
    float* dbeta = ctx.GetOutput(2, {width}).GetTensorMutableData<float>();
    const int64_t chunk = rows_per_chunk(width), chunks = (rows + chunk - 1) / chunk;
    std::vector<float> partial(size_t(chunks * 2 * width));
    LayerNormTask t{ctx.GetInput(1).GetTensorData<float>(),
                    ctx.GetInput(2).GetTensorData<float>(), nullptr,
                    ctx.GetInput(0).GetTensorData<float>(), nullptr, dx, partial.data(),
                    epsilon, width, rows, chunk};
    if (rows > 0) run_layer_norm(ctx, t);
    add_parts(dgamma, partial.data(), chunks, width, 2 * width);
    add_parts(dbeta, partial.data() + width, chunks, width, 2 * width);
  }
};

// -- ReluGrad ---------------------------------------------------------------------------------
// With sums (an optional output: dx summed over every axis but the last, the bias gradient of
// the layer before the ReLU), the tasks take whole rows and add their rows' sums to their own
// partial sums; the partial sums are added in task order (the same for any thread count).
struct ReluGradTask {
  const float *g, *y;
  float *dx, *partial;  // partial: width floats per task, or nullptr
  int64_t size, width, chunk;  // chunk: values per task (whole rows with partial)
};

KG_CLONES void relu_grad_values(const float* __restrict g, const float* __restrict y,
                                float* __restrict dx, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dx[i] = g[i] * from_bits(bits(1.0f) & all_if(y[i] > 0.0f));
}

KG_CLONES void relu_grad_chunk(void* data, size_t n) {
  const auto& t = *static_cast<ReluGradTask*>(data);
  const int64_t begin = int64_t(n) * t.chunk, end = std::min(begin + t.chunk, t.size);
  relu_grad_values(t.g + begin, t.y + begin, t.dx + begin, end - begin);
  if (t.partial == nullptr) return;
  float* sums = t.partial + int64_t(n) * t.width;
  std::fill(sums, sums + t.width, 0.0f);
  for (int64_t row = begin; row < end; row += t.width) add_to(sums, t.dx + row, t.width);
}

struct ReluGradKernel {
  explicit ReluGradKernel(const OrtKernelInfo*) {}
  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto shape = shape_of(ctx, 1);
    if (shape_of(ctx, 0) != shape) bad_shapes("ReluGrad", "a gradient of the ReLU output's shape");
    auto dx = ctx.GetOutput(0, shape);
    const int64_t size = int64_t(dx.GetTensorTypeAndShapeInfo().GetElementCount());
    const int64_t width = shape.empty() ? 1 : shape.back();
    std::vector<int64_t> summed(shape.size(), 1);
    if (!shape.empty()) summed.back() = width;
    float* sums = output_data(ctx, 1, summed);
    const int64_t chunk = sums ? rows_per_chunk(width) * width : kChunkValues;
    const int64_t tasks = chunk ? (size + chunk - 1) / chunk : 0;
    std::vector<float> partial(sums ? size_t(tasks * width) : 0);
    ReluGradTask t{ctx.GetInput(0).GetTensorData<float>(), ctx.GetInput(1).GetTensorData<float>(),
                   dx.GetTensorMutableData<float>(), sums ? partial.data() : nullptr, size,
                   width, chunk};
    run_tasks(ctx, relu_grad_chunk, tasks, size, &t);
    if (sums != nullptr) add_parts(sums, partial.data(), tasks, width, width);
  }
};

// -- ScatterAddRows ---------------------------------------------------------------------------
// out = zeros(dims); out[indices[i]] += updates[i] for every i in index order (rows of
// prod(dims[1:]) values; negative indices count from the end). onnxruntime's ScatterND with
// reduction "add" races on repeated indices when it runs on several threads (onnxruntime
// issues 18048, 23396: rows lost, a different result each run); here threads split the
// columns, never the indices, so each value is summed by one thread in index order.
struct ScatterTask {
  const float* updates;
  const int64_t* rows_of;  // the wrapped row of each update
  float* out;
  int64_t n, row;
};

constexpr int64_t kScatterColumns = 256;  // columns per thread-pool task

KG_CLONES void scatter_columns(const ScatterTask& t, int64_t begin, int64_t end) {
  for (int64_t i = 0; i < t.n; ++i) {
    const float* __restrict src = t.updates + i * t.row;
    float* __restrict dst = t.out + t.rows_of[i] * t.row;
    for (int64_t k = begin; k < end; ++k) dst[k] += src[k];
  }
}

void scatter_task(void* data, size_t block) {
  const auto& t = *static_cast<ScatterTask*>(data);
  const int64_t begin = int64_t(block) * kScatterColumns;
  scatter_columns(t, begin, std::min(begin + kScatterColumns, t.row));
}

struct ScatterAddRowsKernel {
  explicit ScatterAddRowsKernel(const OrtKernelInfo*) {}
  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    auto updates = ctx.GetInput(0), indices = ctx.GetInput(1), dims = ctx.GetInput(2);
    auto dims_info = dims.GetTensorTypeAndShapeInfo();
    const int64_t* d = dims.GetTensorData<int64_t>();
    std::vector<int64_t> shape(d, d + dims_info.GetElementCount());
    if (shape.empty())
      ORT_CXX_API_THROW("kgraph.ScatterAddRows: dims must name at least one axis",
                        ORT_INVALID_ARGUMENT);
    int64_t row = 1;
    for (size_t k = 1; k < shape.size(); ++k) row *= shape[k];
    const int64_t rows = shape[0];
    const int64_t n = int64_t(indices.GetTensorTypeAndShapeInfo().GetElementCount());
    if (int64_t(updates.GetTensorTypeAndShapeInfo().GetElementCount()) != n * row)
      ORT_CXX_API_THROW("kgraph.ScatterAddRows: updates must hold one row of prod(dims[1:]) "
                        "values per index", ORT_INVALID_ARGUMENT);
    const int64_t* idx = indices.GetTensorData<int64_t>();
    std::vector<int64_t> rows_of(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = idx[i] < 0 ? idx[i] + rows : idx[i];
      if (r < 0 || r >= rows)
        ORT_CXX_API_THROW("kgraph.ScatterAddRows: index " + std::to_string(idx[i]) +
                              " is out of range for " + std::to_string(rows) + " rows",
                          ORT_INVALID_ARGUMENT);
      rows_of[size_t(i)] = r;
    }
    auto out = ctx.GetOutput(0, shape);
    float* o = out.GetTensorMutableData<float>();
    std::fill(o, o + rows * row, 0.0f);
    ScatterTask t{updates.GetTensorData<float>(), rows_of.data(), o, n, row};
    const int64_t blocks = (row + kScatterColumns - 1) / kScatterColumns;
    if (blocks <= 1 || n * row < (1 << 16))
      scatter_columns(t, 0, row);
    else
      ctx.ParallelFor(scatter_task, size_t(blocks), 0, &t);
  }
};

FloatOp<MaxPoolGradKernel, 2, 1> max_pool_grad_op("MaxPoolGrad");
FloatOp<Im2ColKernel, 1, 1> im2col_rows_op("Im2ColRows");
FloatOp<AdamUpdateKernel, 6, 3, 5> adam_update_op("AdamUpdate");
// (updates float, indices int64, dims int64) -> float
FloatOp<ScatterAddRowsKernel, 3, 1, 3, 1, 0b110, 0, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64>
    scatter_add_rows_op("ScatterAddRows");
FloatOp<SoftmaxGradKernel, 2, 1> softmax_grad_op("SoftmaxGrad");
FloatOp<ReluGradKernel, 2, 2, 2, 1> relu_grad_op("ReluGrad");
FloatOp<LayerNormKernel, 3, 1> layer_norm_op("LayerNorm");
FloatOp<LayerNormGradKernel, 3, 3> layer_norm_grad_op("LayerNormGrad");
// (like float, key uint32) -> float
FloatOp<RandomUniformKernel, 2, 1, 2, 1, 0b10, 0, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32>
    random_uniform_op("RandomUniformLike");
FloatOp<BatchTransposeKernel, 1, 1> batch_transpose_op("BatchTranspose");
FloatOp<MaxUnpoolKernel, 2, 1, 2, 1, 0b10> max_unpool_op("MaxUnpool");  // (g, index uint8)

}  // namespace

// The calling thread's SSE control and status register, set to `value`; returns the previous
// one. runtime/onnx_exec.py sets flush-to-zero and denormals-are-zero (bits 15 and 6) on the
// thread that calls a session's run or makes a session, for that call, and puts the previous
// value back: onnxruntime's "session.set_denormal_as_zero" sets them on its pool threads for
// good, and on the thread that makes the session (numpy there keeps its denormals).
extern "C" __attribute__((visibility("default"))) unsigned kgraph_set_mxcsr(unsigned value) {
#if defined(__x86_64__) || defined(__i386__)
  const unsigned old = _mm_getcsr();
  _mm_setcsr(value);
  return old;
#else
  return value;
#endif
}

// Sets flush-to-zero and denormals-are-zero on the calling thread; returns the previous MXCSR
// (kgraph_set_mxcsr restores it).
extern "C" __attribute__((visibility("default"))) unsigned kgraph_flush_denormals() {
#if defined(__x86_64__) || defined(__i386__)
  const unsigned old = _mm_getcsr();
  _mm_setcsr(old | 0x8040u);
  return old;
#else
  return 0;
#endif
}

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr)  // an onnxruntime older than these headers: refuse, through API 1
    return api_base->GetApi(1)->CreateStatus(ORT_FAIL, "kgraph ops need onnxruntime >= 1.21");
  Ort::InitApi(api);
  try {
    // the domain outlives every session made with these options: it is never released
    static Ort::CustomOpDomain* domain = [] {
      auto* d = new Ort::CustomOpDomain("kgraph");
      d->Add(&max_pool_grad_op);
      kgops::add_lstm_ops(*d);
      kgops::add_conv_ops(*d);
      d->Add(&im2col_rows_op);
      d->Add(&adam_update_op);
      d->Add(&scatter_add_rows_op);
      d->Add(&softmax_grad_op);
      d->Add(&relu_grad_op);
      d->Add(&layer_norm_op);
      d->Add(&layer_norm_grad_op);
      d->Add(&max_unpool_op);
      d->Add(&random_uniform_op);
      d->Add(&batch_transpose_op);
      return d;
    }();
    Ort::UnownedSessionOptions(options).Add(*domain);
  } catch (const Ort::Exception& e) {
    return Ort::GetApi().CreateStatus(ORT_FAIL, e.what());
  }
  return nullptr;
}
