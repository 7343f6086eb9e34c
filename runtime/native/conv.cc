// 2-D convolutions of one group, channels first, as onnxruntime operators of the "kgraph"
// domain: the forward pass and both of its gradients, with ONNX's Conv / ConvTranspose
// semantics (attrs strides, dilations, pads = begin h, begin w, end h, end w):
//
//   Conv2D(x, w, b?)             y = Conv(x, w) + b, x (n, c, h, w), w (o, c, kh, kw);
//                                attr relu: max(y, 0) on the way out; attr pool = 2: y's 2x2
//                                max pooling at stride 2 instead, and (output 1, uint8) each
//                                window's first-maximum offset (see Pooling).
//   ConvTranspose2D(x, w, b?, i?)  y = ConvTranspose(x, w) + b (the input gradient of a
//                                Conv), w (c, o, kh, kw); attr output_padding; with attr
//                                pool_shape (h, w), x is the gradient of a pooled Conv2D's
//                                output and i its offsets (see OutputGrad).
//   Conv2DKernelGrad(x, g, i?)   d/dw of Conv(x, w) given its output gradient g: (o, c, kh,
//                                kw); attr kernel_shape; attr pool = 2: g pooled, i offsets.
// compiler/onnx/emit.py fuses a conv-relu-max pooling block's nodes into these (the full-size
// output and its gradient are never written).
//
// With attr kernel_layout = 1 every kernel, read or written, is in Keras' layout (kh, kw,
// in, out), and no Transpose of the weights to ONNX's layout and back runs
// (compiler/onnx/emit.py folds them in).
//
// All three are one product shape (an "implicit GEMM"): a tile of 6 rows by 16 columns (12
// with AVX-512), twelve accumulators in registers, summing a[row][koff[k]] * b[k][16 columns]
// over k, where
// the rows and offsets index the image directly: no im2col buffer is written. The forward
// pass's rows are output sites and k runs over (channel, window offset); the transposed
// convolution's rows are input sites, k runs over input channels, and each window offset's
// tile is added into the output at that offset (scatter); the kernel gradient's rows are
// (channel, window offset) and k runs over the output sites of every image. onnxruntime's
// own Conv (NCHWc, with reorders around it), ConvTranspose (a GEMM per image, then col2im)
// and the im2col kernel gradient reach 75-105 GFLOP/s on one AVX2 core on a small CNN's
// layers; these 90-100 without the reorders and im2col passes. Conv2D of layers with few
// products per output (the first, on images) turns the tile around: rows are output channels
// and columns sites along an output row, so that it stores vectors (conv_rows_image). A 3x3
// Conv2D at stride 1 over 32 channels or more (and the transposed convolution of a padded one)
// runs as Winograd F(2x2, 3x3): 16 GEMMs of transformed blocks, 16 products where the direct
// sum has 36 (winograd_conv). The loops may contract into FMA (compared with the numpy
// reference to a tolerance).
#include "ortops.h"

#include <cstdlib>

namespace kgops {
namespace {

constexpr int64_t kCols = 16;  // the register tile's columns
constexpr int64_t kTileRows = 12;  // a multiple of every tile's rows: where tasks split rows

inline int64_t tiles(int64_t n, int64_t t) { return (n + t - 1) / t; }

// The register tile, rows by kCols columns of accumulators: with AVX2 six rows of two v8 (12
// of its 16 vector registers), with AVX-512 twelve rows of one v16 (12 of 32: each broadcast
// of a row's value feeds one 16-wide FMA). Both sum over k in the same order, with FMA.
typedef float v16 __attribute__((vector_size(64)));
struct Avx2Tile {
  static constexpr int rows = 6;
  typedef v8 V;
};
struct Avx512Tile {
  static constexpr int rows = 12;
  typedef v16 V;
};

// to[i][0..15] = (kAdd ? to[i][0..15] : 0) + sum over k < depth of a[i][koff[k]] * b[k * ldb
// + 0..15], rows i < T::rows (a row whose result is not wanted: a spare `to`)
template <class T, bool kAdd = false>
KG_INLINE void tile(const float* const* a, const int32_t* koff, const float* b, int64_t ldb,
                    int64_t depth, float* const* to) {
  typedef typename T::V V;
  constexpr int R = T::rows, L = int(sizeof(V) / sizeof(float)), NV = int(kCols) / L;
  V c[R][NV];
  const float* ar[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    ar[i] = a[i];
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      if (kAdd)
        std::memcpy(&c[i][j], to[i] + j * L, sizeof(V));
      else
        c[i][j] = V{};
    }
  }
  for (int64_t k = 0; k < depth; ++k) {
    V bv[NV];
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) std::memcpy(&bv[j], b + k * ldb + j * L, sizeof(V));
    const int32_t o = koff[k];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const float v = ar[i][o];
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) c[i][j] += v * bv[j];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) std::memcpy(to[i] + j * L, &c[i][j], sizeof(V));
}

// Whether the environment variable `name` is "0" (read on every call: a process can compare)
bool switched_off(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::string(value) == "0";
}

// AVX-512's tile where the CPU has AVX-512 (F and VL) and KGRAPH_AVX512 is not "0" (the tests
// run both); AVX2's, or the baseline ISA's, elsewhere
bool wide_tiles() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         !switched_off("KGRAPH_AVX512");
#else
  return false;
#endif
}

// A thread-pool task over register tiles, compiled for each: Narrow (the task on Avx2Tile) in
// the AVX2 and baseline clones, Wide (on Avx512Tile) for AVX-512; pick() is the machine's
using TaskFn = void (*)(void*, size_t);
template <TaskFn Narrow, TaskFn Wide>
struct Tiled {
  static KG_CLONES KG_FMA void narrow(void* data, size_t task) { Narrow(data, task); }
  static KG_AVX512 KG_FMA void wide(void* data, size_t task) { Wide(data, task); }
  static TaskFn pick() { return wide_tiles() ? wide : narrow; }
};

// -- geometry ---------------------------------------------------------------------------------
// an optional int attribute's value, `fallback` where the node has none
int64_t int_attr(const OrtKernelInfo* info, const char* name, int64_t fallback) {
  try {
    return Ort::ConstKernelInfo(info).GetAttribute<int64_t>(name);
  } catch (const Ort::Exception&) {
    return fallback;
  }
}

struct Attrs {
  std::vector<int64_t> strides, dilations, pads;
  bool hwio;  // kernel_layout 1: the kernel is Keras' (kh, kw, in, out), else ONNX's

  explicit Attrs(const OrtKernelInfo* info) : hwio(int_attr(info, "kernel_layout", 0) != 0) {
    Ort::ConstKernelInfo ki(info);
    strides = ki.GetAttributes<int64_t>("strides");
    dilations = ki.GetAttributes<int64_t>("dilations");
    pads = ki.GetAttributes<int64_t>("pads");
    if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4 ||
        std::min({strides[0], strides[1], dilations[0], dilations[1]}) < 1 ||
        std::min({pads[0], pads[1], pads[2], pads[3]}) < 0)
      ORT_CXX_API_THROW("kgraph.Conv2D*: 2 strides and dilations >= 1, 4 pads >= 0 expected",
                        ORT_INVALID_ARGUMENT);
  }
};

// A convolution's sizes: n images of c channels h x w, zero padded to hp x wp, an o-channel
// kh x kw window at strides s and dilations d, oh x ow output sites.
struct Geometry {
  int64_t n, c, h, w, o, kh, kw, sh, sw, dh, dw, top, left, hp, wp, oh, ow;

  int64_t sites() const { return oh * ow; }
  int64_t depth() const { return c * kh * kw; }  // (channel, window offset) pairs
  bool padded() const { return hp != h || wp != w; }

  // offsets into a padded image: of each output site's window origin, and of each
  // (channel, window offset) from it
  std::vector<int32_t> site_offsets() const {
    std::vector<int32_t> off(static_cast<size_t>(sites()));
    for (int64_t p = 0; p < sites(); ++p)
      off[size_t(p)] = int32_t((p / ow) * sh * wp + (p % ow) * sw);
    return off;
  }
  std::vector<int32_t> window_offsets() const {
    std::vector<int32_t> off(static_cast<size_t>(depth()));
    for (int64_t ch = 0, k = 0; ch < c; ++ch)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x)
          off[size_t(k++)] = int32_t(ch * hp * wp + y * dh * wp + x * dw);
    return off;
  }
};

// A kernel's shape as ONNX's (a, b, kh, kw) from Keras' (kh, kw, b, a) where hwio
std::vector<int64_t> onnx_kernel_shape(const std::vector<int64_t>& k, bool hwio) {
  if (!hwio || k.size() != 4) return k;
  return {k[3], k[2], k[0], k[1]};
}

// The sizes of Conv(x (n, c, h, w), w (o, c, kh, kw)) under attrs, checked.
Geometry conv_geometry(const char* op, const std::vector<int64_t>& x,
                       const std::vector<int64_t>& k, const Attrs& a) {
  if (x.size() != 4 || k.size() != 4 || x[1] != k[1])
    bad_shapes(op, "x (n, c, h, w) and a kernel (o, c, kh, kw) expected");
  Geometry g{x[0], x[1], x[2], x[3], k[0], k[2], k[3], a.strides[0], a.strides[1],
             a.dilations[0], a.dilations[1], a.pads[0], a.pads[1], x[2] + a.pads[0] + a.pads[2],
             x[3] + a.pads[1] + a.pads[3], 0, 0};
  const int64_t span_h = (g.kh - 1) * g.dh + 1, span_w = (g.kw - 1) * g.dw + 1;
  if (g.hp < span_h || g.wp < span_w) bad_shapes(op, "a window no larger than the padded input");
  g.oh = (g.hp - span_h) / g.sh + 1;
  g.ow = (g.wp - span_w) / g.sw + 1;
  if (g.c * g.hp * g.wp >= (int64_t(1) << 31)) bad_shapes(op, "images under 2^31 values");
  return g;
}

// x's images zero padded to hp x wp (x itself where there is no padding)
struct PadTask {
  const Geometry* g;
  const float* x;
  float* out;
};

void pad_image(void* data, size_t i) {
  const auto& t = *static_cast<const PadTask*>(data);
  const Geometry& g = *t.g;
  float* out = t.out + int64_t(i) * g.c * g.hp * g.wp;
  std::fill(out, out + g.c * g.hp * g.wp, 0.0f);
  for (int64_t ch = 0; ch < g.c; ++ch)
    for (int64_t y = 0; y < g.h; ++y)
      std::memcpy(out + (ch * g.hp + y + g.top) * g.wp + g.left,
                  t.x + ((int64_t(i) * g.c + ch) * g.h + y) * g.w, sizeof(float) * size_t(g.w));
}

const float* padded_input(Ort::KernelContext& ctx, const Geometry& g, const float* x,
                          std::vector<float>& buffer) {
  if (!g.padded()) return x;
  buffer.resize(size_t(g.n * g.c * g.hp * g.wp));
  PadTask t{&g, x, buffer.data()};
  run_tasks(ctx, pad_image, g.n, g.n * g.c * g.hp * g.wp, &t);
  return buffer.data();
}

// rows of a tile from `first`, rows past `count` repeating the first (computed, not stored)
template <class T>
KG_INLINE void tile_rows(const float* base, const int32_t* row_off, int64_t first, int64_t count,
                         const float** a) {
  for (int64_t i = 0; i < T::rows; ++i)
    a[i] = base + row_off[first + (i < count - first ? i : 0)];
}

// where kernel element (o, c, window offset k) of g's convolution is, in either layout
int64_t kernel_at(const Geometry& g, bool hwio, int64_t o, int64_t c, int64_t k) {
  return hwio ? (k * g.c + c) * g.o + o : (o * g.c + c) * g.kh * g.kw + k;
}

// -- the max pooling that may follow Conv2D ---------------------------------------------------
// With attr pool = 2, Conv2D's output (bias and relu applied) goes through a 2x2 max pooling at
// stride 2 before it is written: outputs the pooled (n, o, oh / 2, ow / 2) and, uint8 of that
// shape, each window's offset of its first maximum in row-major order (0 .. 3), which
// kgraph.MaxUnpool (ortops.cc) routes the pooled gradient by: ortops.h's window_max, which
// MaxPoolGrad routes by too, so the gradient is the one MaxPoolGrad computes from the
// unpooled output (compiler/onnx/emit.py fuses Conv2D, MaxPool and MaxPoolGrad so). Rows and
// columns past the last window are dropped. A NaN in a window: std::max's order, offset 3 in
// MaxPoolGrad's.
struct Pooling {
  int64_t oh, ow;  // the pooled size
  float* y;
  uint8_t* index;
};

// Eight 2x2 windows of rows z0 and z1 (16 floats each) into y and index: lanes < count stored
inline __attribute__((always_inline)) void pool_8_windows(const float* z0, const float* z1,
                                                          float* y, uint8_t* index, int count) {
  v8 a, b, c, d, m;
  v8i k;
  window_corners(z0, z1, a, b, c, d);
  window_max(a, b, c, d, m, k);
  if (count == 8) {
    typedef uint8_t v32b __attribute__((vector_size(32)));  // each lane's low byte, first 8
    const v32b low = {0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0,
                      0, 0, 0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0, 0, 0, 0};
    const v32b bytes = __builtin_shuffle(reinterpret_cast<const v32b&>(k), low);
    store8(y, m);
    std::memcpy(index, &bytes, 8);
    return;
  }
  for (int l = 0; l < count; ++l) {
    y[l] = m[l];
    index[l] = uint8_t(k[l]);
  }
}

// The pooling of planes z (h x w each, `planes` of them, from plane `first` of p's outputs),
// eight windows a vector: a row's last vector overlaps the one before it, or, in rows of
// fewer than eight windows, reads past the row (z holds kPoolSlack floats more)
constexpr int64_t kPoolSlack = 16;

KG_CLONES void max_pool_2x2(const float* z, int64_t h, int64_t w, int64_t first, int64_t planes,
                            const Pooling& p) {
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t r = 0; r < p.oh; ++r) {
      const float* z0 = z + (plane * h + 2 * r) * w;
      const float* z1 = z0 + w;
      float* y = p.y + ((first + plane) * p.oh + r) * p.ow;
      uint8_t* index = p.index + ((first + plane) * p.oh + r) * p.ow;
      if (p.ow < 8) {
        pool_8_windows(z0, z1, y, index, int(p.ow));
        continue;
      }
      for (int64_t j = 0; j < p.ow; j += 8) {
        const int64_t at = std::min(j, p.ow - 8);
        pool_8_windows(z0 + 2 * at, z1 + 2 * at, y + at, index + at, 8);
      }
    }
}

// -- Winograd F(m x m, 3 x 3) -----------------------------------------------------------------
// A 3x3 window at stride 1 and dilation 1 over enough channels: each m x m block of outputs is
// A' [sum over input channels of (G k G') * (B' d B)] A, d the block's a x a input patch
// (a = m + 2; Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): a^2
// products per (block, input channel, output channel) where the direct sum has 9 m^2 (F(2x2,
// 3x3): 16 for 36; F(4x4, 3x3): 36 for 144). The sum is a^2 GEMMs, one per point of the
// transform (blocks by input channels, times input by output channels), run by the register
// tile above; a task transforms a chunk of one image's blocks (or several whole images, where
// an image has few), multiplies and transforms back with its buffers in L2. F(2x2)'s transforms
// add and halve (exact in binary); F(4x4)'s scale by up to 8 and its G holds sixths, so its
// rounding errors are larger (about 1e-6 of the output's scale, against 1e-7). A NaN or
// infinity in a block's patch reaches all of its outputs (the direct sum: those whose window
// holds it). Both gradients of the convolution have the same form: the input gradient is
// B [sum over output channels of (G k G') * (A dy A')] B' per m x m block of dy, the kernel
// gradient G' [sum over blocks of (B' d B) * (A dy A')] G.
struct WinogradF2 {
  static constexpr int m = 2, a = 4;
  static constexpr float bt[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float g[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
  static constexpr float at[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

struct WinogradF4 {  // the points 0, 1, -1, 2, -2 and infinity
  static constexpr int m = 4, a = 6;
  static constexpr float bt[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                     {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                     {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float g[6][3] = {{1.0f / 4, 0, 0},
                                    {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                    {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                    {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                    {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                    {0, 0, 1}};
  static constexpr float at[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

// sum over k < K of T(i, k) x[k * stride], T = t or, with kT, t' (its entries constants once
// inlined: zero terms are skipped and ones and minus ones do not multiply)
template <int K, bool kT, typename V, size_t TR, size_t TC>
inline __attribute__((always_inline)) V combine(const float (&t)[TR][TC], int i, const V* x,
                                                int stride) {
  V s{};
  bool any = false;
#pragma GCC unroll 8
  for (int k = 0; k < K; ++k) {
    const float c = kT ? t[k][i] : t[i][k];
    if (c == 0.0f) continue;
    const V v = x[k * stride];
    const V term = c == 1.0f ? v : c == -1.0f ? -v : c * v;
    s = any ? s + term : term;
    any = true;
  }
  return s;
}

// y = T x T' for a K x K block x (T: R x K, t or with kT t')
template <int R, int K, bool kT, typename V, size_t TR, size_t TC>
inline __attribute__((always_inline)) void sandwich(const float (&t)[TR][TC], const V (&x)[K][K],
                                                    V (&y)[R][R]) {
  V e[R][K];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < K; ++j) e[i][j] = combine<K, kT>(t, i, &x[0][j], K);
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < R; ++j) y[i][j] = combine<K, kT>(t, j, &e[i][0], 1);
}

constexpr int64_t kWinogradBlocks = 48;  // output blocks per task, at most (whole images: more)
constexpr int64_t kWinogradChannels = 32;  // fewer input or output channels: the direct tiles
constexpr int64_t kWinogradMinBlocks = 256;  // 2x2 blocks of all images, at least
constexpr int64_t kWinogradMaxProducts = 1 << 16;  // input x output channels: G k G' <= 4 MB
constexpr int64_t kWinogradAdjointBlocks = 192;  // 2x2 blocks of one image: a task's buffers
constexpr int64_t kWinogradGradTasks = 4;  // kernel gradient: partial sums of a chunk of images

// M[xi] = V[xi] U[xi] for the points xi < points: V [points][nb][ldv] (depth values of each
// row used), U [points][strips][depth][16], M [points][nb][strips * 16]
template <class T>
KG_INLINE void winograd_products(const float* v, int64_t ldv, int64_t nb, int64_t points,
                                 const float* u, const int32_t* koff, int64_t depth,
                                 int64_t strips, float* m) {
  for (int64_t xi = 0; xi < points; ++xi)
    for (int64_t s = 0; s < strips; ++s)
      for (int64_t r = 0; r < nb; r += T::rows) {
        const float* a[T::rows];
        for (int64_t i = 0; i < T::rows; ++i)
          a[i] = v + (xi * nb + (r + i < nb ? r + i : r)) * ldv;
        float spare[kCols], *to[T::rows];
        for (int64_t i = 0; i < T::rows; ++i)
          to[i] = r + i < nb ? m + (xi * nb + r + i) * strips * kCols + s * kCols : spare;
        tile<T>(a, koff, u + (xi * strips + s) * depth * kCols, kCols, depth, to);
      }
}

// dst [rows][cols][cp] = src (channels, h, w) channels last, dst row r holding src row
// first + r - top at column left on (zero elsewhere: dst is zeroed first). 8 channels by 8
// columns at a time through registers, the last block of a row (or of the channels)
// overlapping the one before it, where there are 8 or more.
KG_CLONES void stage_channels_last(const float* src, int64_t channels, int64_t h, int64_t w,
                                   int64_t first, int64_t top, int64_t left, int64_t rows,
                                   int64_t cols, int64_t cp, std::vector<float>& dst) {
  dst.resize(size_t(rows * cols * cp));
  std::memset(dst.data(), 0, dst.size() * sizeof(float));
  const int64_t width = std::min(w, cols - left);
  const bool blocks = width >= 8 && channels >= 8;
  for (int64_t r = std::max<int64_t>(0, top - first); r < rows && first + r - top < h; ++r) {
    const float* from = src + (first + r - top) * w;
    float* to = dst.data() + (r * cols + left) * cp;
    if (!blocks) {
      for (int64_t ch = 0; ch < channels; ++ch)
        for (int64_t q = 0; q < width; ++q) to[q * cp + ch] = from[ch * h * w + q];
      continue;
    }
    for (int64_t c8 = 0; c8 < channels; c8 += 8)
      for (int64_t q8 = 0; q8 < width; q8 += 8) {
        const int64_t ch = std::min(c8, channels - 8), q = std::min(q8, width - 8);
        v8 block[8];
        for (int64_t j = 0; j < 8; ++j) block[j] = load8(from + (ch + j) * h * w + q);
        transpose8(block);
        for (int64_t j = 0; j < 8; ++j) store8(to + (q + j) * cp + ch, block[j]);
      }
  }
}

// A convolution's output gradient dy (n, o, oh, ow) as an operator reads it: dense, or (attr
// pool = 2) the gradient of the output's 2x2 max pooling and that pooling's first-maximum
// offsets (see Pooling: Conv2D pool = 2 writes them), unpooled where it is read.
struct OutputGrad {
  int64_t n, o, oh, ow;
  const float* dense;      // or null: pooled
  const float* pooled;     // (n, o, oh / 2, ow / 2)
  const uint8_t* index;    // of pooled's shape

  // image's gradient channels last, dst [rows][cols][ld], zero past oh x ow and o channels
  void stage(int64_t image, int64_t rows, int64_t cols, int64_t ld,
             std::vector<float>& dst) const {
    if (dense)
      return stage_channels_last(dense + image * o * oh * ow, o, oh, ow, 0, 0, 0, rows, cols, ld,
                                 dst);
    dst.resize(size_t(rows * cols * ld));
    std::memset(dst.data(), 0, dst.size() * sizeof(float));
    const int64_t ph = oh / 2, pw = ow / 2, plane = ph * pw;
    const float* g = pooled + image * o * plane;
    const uint8_t* k = index + image * o * plane;
    float* to = dst.data();
    const int64_t o8 = o / 8 * 8;
    const v8 zero = {};
    for (int64_t qr = 0; qr < ph; ++qr)  // a window's channels at a time, 8 a vector: its
      for (int64_t qc = 0; qc < pw; ++qc) {  // 2x2 sites each get g or zero
        const int64_t q = qr * pw + qc, corner = (2 * qr * cols + 2 * qc) * ld;
        for (int64_t ch = 0; ch < o8; ch += 8) {
          v8 v;
          v8i at;
          for (int l = 0; l < 8; ++l) {
            v[l] = g[(ch + l) * plane + q];
            at[l] = k[(ch + l) * plane + q];
          }
          store8(to + corner + ch, at == 0 ? v : zero);
          store8(to + corner + ld + ch, at == 1 ? v : zero);
          store8(to + corner + cols * ld + ch, at == 2 ? v : zero);
          store8(to + corner + (cols + 1) * ld + ch, at == 3 ? v : zero);
        }
        for (int64_t ch = o8; ch < o; ++ch) {
          const uint8_t at = k[ch * plane + q];
          to[corner + ((at >> 1) * cols + (at & 1)) * ld + ch] = g[ch * plane + q];
        }
      }
  }

  // all of it dense: itself, or unpooled into `buffer`
  const float* unpooled(Ort::KernelContext& ctx, std::vector<float>& buffer) const {
    if (dense) return dense;
    buffer.resize(size_t(n * o * oh * ow));
    unpool_2x2(ctx, pooled, index, n * o, oh / 2, ow / 2, oh, ow, buffer.data());
    return buffer.data();
  }
};

// The output gradient an operator reads from input k (pooled: with input k_index), of a
// convolution output (n, o, oh, ow); a pooled one's shape is checked
OutputGrad output_grad(Ort::KernelContext& ctx, size_t k, size_t k_index, bool pooled,
                       int64_t n, int64_t o, int64_t oh, int64_t ow, const char* op) {
  if (!pooled) return {n, o, oh, ow, ctx.GetInput(k).GetTensorData<float>(), nullptr, nullptr};
  const std::vector<int64_t> shape{n, o, oh / 2, ow / 2};
  if (shape_of(ctx, k) != shape || !has_input(ctx, k_index) || shape_of(ctx, k_index) != shape)
    bad_shapes(op, "a pooled gradient (n, o, oh / 2, ow / 2) and window offsets of its shape");
  return {n, o, oh, ow, nullptr, ctx.GetInput(k).GetTensorData<float>(),
          ctx.GetInput(k_index).GetTensorData<uint8_t>()};
}

// V[xi][b][0..cp) = B' d B for the blocks b < nb (block first + b of bw a row), d the a x a
// patch of the staged input xt [][cols][cp] whose rows start at padded row row0; V's points
// are ldr rows apart
template <class F>
inline __attribute__((always_inline)) void input_blocks(const float* xt, int64_t cols,
                                                        int64_t cp, int64_t row0, int64_t bw,
                                                        int64_t first, int64_t nb, int64_t ldr,
                                                        float* v) {
  constexpr int a = F::a;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t block = first + b;
    const float* d = xt + ((F::m * (block / bw) - row0) * cols + F::m * (block % bw)) * cp;
    for (int64_t ch = 0; ch < cp; ch += 8) {
      v8 x[a][a], y[a][a];
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) x[i][j] = load8(d + (i * cols + j) * cp + ch);
      sandwich<a, a, false>(F::bt, x, y);
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) store8(v + ((i * a + j) * ldr + b) * cp + ch, y[i][j]);
    }
  }
}

// V[xi][b][0..op) = A dy A' for the nb blocks of the staged output gradient dyt [][cols][op]
// (bw a row); V's points are ldr rows apart
template <class F>
inline __attribute__((always_inline)) void gradient_blocks(const float* dyt, int64_t cols,
                                                           int64_t op, int64_t bw, int64_t nb,
                                                           int64_t ldr, float* v) {
  constexpr int a = F::a, m = F::m;
  for (int64_t b = 0; b < nb; ++b) {
    const float* d = dyt + (m * (b / bw) * cols + m * (b % bw)) * op;
    for (int64_t ch = 0; ch < op; ch += 8) {
      v8 x[m][m], y[a][a];
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < m; ++j) x[i][j] = load8(d + (i * cols + j) * op + ch);
      sandwich<a, m, true>(F::at, x, y);
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) store8(v + ((i * a + j) * ldr + b) * op + ch, y[i][j]);
    }
  }
}

// A task's blocks: `images` whole images from image0 on, or blocks first .. first + count of
// one image
struct BlockRange {
  int64_t image0, images, first, count;
};

inline BlockRange block_range(int64_t task, int64_t n, int64_t images, int64_t chunks,
                              int64_t chunk, int64_t blocks) {
  if (images > 1) {
    const int64_t image0 = task * images;
    return {image0, std::min(images, n - image0), 0, blocks};
  }
  const int64_t first = (task % chunks) * chunk;
  return {task / chunks, 1, first, std::min(chunk, blocks - first)};
}

// whole images a task may take where an image has fewer than kWinogradBlocks blocks
inline int64_t most_images(int64_t blocks) {
  return std::max<int64_t>(1, kWinogradBlocks / blocks);
}

// whole images per task, of n: the tasks most_images needs rounded up to a multiple of 4
// (split evenly between threads), the images spread
inline int64_t images_per_task(int64_t n, int64_t blocks) {
  return tiles(n, std::min(n, tiles(tiles(n, most_images(blocks)), 4) * 4));
}

struct WinogradTask {
  int64_t n, c, cp, h, w, top, left, o, oh, ow, bw, blocks, chunk, chunks, images, strips;
  const float *x, *u, *bias;  // x: (n, c, h, w); u: [a^2][o / 16][c][16]; bias padded to 16s
  const int32_t* koff;        // 0, 1, ..., c - 1
  bool relu;
  float* y;                // (n, o, oh, ow), or where pooled is not null:
  const Pooling* pooled;   // the 2x2 max pooling of the output
};

template <class T, class F>
KG_INLINE void winograd_chunk(void* data, size_t task) {
  constexpr int m = F::m, a = F::a;
  const auto& t = *static_cast<const WinogradTask*>(data);
  const BlockRange r = block_range(int64_t(task), t.n, t.images, t.chunks, t.chunk, t.blocks);
  const int64_t nb = r.images * r.count, ldo = t.strips * kCols, cp = t.cp;
  if (r.images <= 0 || r.count <= 0) return;
  // the rows of padded input the blocks read, channels last (cp, a multiple of 8), zero
  // outside the image: a patch's 8 channels are one vector
  const int64_t row0 = m * (r.first / t.bw);
  const int64_t rows = m * ((r.first + r.count - 1) / t.bw) + a - row0, cols = m * t.bw + a - m;
  // per-thread buffers, kept between calls: a fresh one of this size would be mapped and
  // unmapped by every task (page faults, and on several threads the unmapping's TLB flushes)
  thread_local std::vector<float> xt_buffer, v_buffer, m_buffer;
  v_buffer.resize(size_t(a * a * nb * cp));
  m_buffer.resize(size_t(a * a * nb * ldo));
  float *const v = v_buffer.data(), *const mm = m_buffer.data();
  for (int64_t i = 0; i < r.images; ++i) {  // V[xi][block][channel] = B' d B
    stage_channels_last(t.x + (r.image0 + i) * t.c * t.h * t.w, t.c, t.h, t.w, row0, t.top,
                        t.left, rows, cols, cp, xt_buffer);
    input_blocks<F>(xt_buffer.data(), cols, cp, row0, t.bw, r.first, r.count, nb,
                    v + i * r.count * cp);
  }
  winograd_products<T>(v, cp, nb, a * a, t.u, t.koff, t.c, t.strips, mm);  // M[xi] = V[xi] U[xi]
  const v8 zero = {};
  for (int64_t row = 0; row < nb; ++row) {  // A' M A, eight output channels at a time
    const int64_t block = r.first + row % r.count;
    const int64_t r0 = m * (block / t.bw), c0 = m * (block % t.bw);
    const int64_t out_rows = std::min<int64_t>(m, t.oh - r0);
    const int64_t out_cols = std::min<int64_t>(m, t.ow - c0);
    float* y = t.pooled ? nullptr
                        : t.y + (r.image0 + row / r.count) * t.o * t.oh * t.ow + r0 * t.ow + c0;
    for (int64_t o8 = 0; o8 < ldo; o8 += 8) {
      v8 p[a][a], out[m][m];
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) p[i][j] = load8(mm + ((i * a + j) * nb + row) * ldo + o8);
      sandwich<m, a, false>(F::at, p, out);
      const v8 bias = load8(t.bias + o8);
      for (auto& line : out)
        for (auto& q : line) {
          q += bias;
          if (t.relu) q = q < zero ? zero : q;  // NaN stays NaN, as in onnxruntime's Relu
        }
      if (t.pooled) {  // the block's windows inside the pooled output, 8 channels a vector
        const Pooling& p = *t.pooled;
        const int64_t image = r.image0 + row / r.count;
        for (int i = 0; i < m / 2 && r0 / 2 + i < p.oh; ++i)
          for (int q = 0; q < m / 2 && c0 / 2 + q < p.ow; ++q) {
            v8 most;
            v8i k;
            window_max(out[2 * i][2 * q], out[2 * i][2 * q + 1], out[2 * i + 1][2 * q],
                       out[2 * i + 1][2 * q + 1], most, k);
            const int64_t at = (image * t.o + o8) * p.oh * p.ow + (r0 / 2 + i) * p.ow + c0 / 2 + q;
            for (int64_t j = 0; j < 8 && o8 + j < t.o; ++j) {
              p.y[at + j * p.oh * p.ow] = most[j];
              p.index[at + j * p.oh * p.ow] = uint8_t(k[j]);
            }
          }
        continue;
      }
      if constexpr (m == 4) {
        if (out_rows == 4 && out_cols == 4 && o8 + 8 <= t.o) {
          for (int i = 0; i < m; i += 2) {  // rows i, i + 1 of eight channels: an 8 x 8 block
            v8 block[8];
            for (int q = 0; q < 4; ++q) {
              block[q] = out[i][q];
              block[4 + q] = out[i + 1][q];
            }
            transpose8(block);  // block[j]: channel o8 + j's row i, then row i + 1
            for (int64_t j = 0; j < 8; ++j) {
              float* plane = y + (o8 + j) * t.oh * t.ow + i * t.ow;
              std::memcpy(plane, &block[j], 4 * sizeof(float));
              std::memcpy(plane + t.ow, reinterpret_cast<const float*>(&block[j]) + 4,
                          4 * sizeof(float));
            }
          }
          continue;
        }
      }
      for (int64_t j = 0; j < 8 && o8 + j < t.o; ++j) {
        float* plane = y + (o8 + j) * t.oh * t.ow;
        for (int64_t i = 0; i < out_rows; ++i)
          for (int64_t q = 0; q < out_cols; ++q) plane[i * t.ow + q] = out[i][q][j];
      }
    }
  }
}

// G k G' of every kernel(o, c, i, j), packed for the GEMMs: [a^2][o / 16][c][16] (rows c by
// columns o), or with `transposed` [a^2][c / 16][o][16] (rows o by columns c)
template <class F, typename Kernel>
KG_CLONES std::vector<float> winograd_kernels(int64_t c, int64_t o, Kernel kernel,
                                              bool transposed) {
  constexpr int a = F::a;
  const int64_t cols = transposed ? c : o, rows = transposed ? o : c;
  const int64_t strips = tiles(cols, kCols);
  std::vector<float> u(size_t(a * a * strips * rows * kCols), 0.0f);
  for (int64_t o8 = 0; o8 < o; o8 += 8)  // eight output channels at a time
    for (int64_t ch = 0; ch < c; ++ch) {
      v8 k[3][3] = {}, gk[a][a];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
          for (int64_t l = 0; l < 8 && o8 + l < o; ++l) k[i][j][l] = kernel(o8 + l, ch, i, j);
      sandwich<a, 3, false>(F::g, k, gk);
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) {
          float* point = u.data() + (i * a + j) * strips * rows * kCols;
          if (!transposed) {  // rows c, the eight columns o8 .. o8 + 7 of a strip
            store8(point + ((o8 / kCols) * rows + ch) * kCols + o8 % kCols, gk[i][j]);
          } else {
            for (int64_t l = 0; l < 8 && o8 + l < o; ++l)
              point[((ch / kCols) * rows + o8 + l) * kCols + ch % kCols] = gk[i][j][l];
          }
        }
    }
  return u;
}

// 0, stride, 2 stride, ... (n of them): the depth offsets of rows laid out contiguously
std::vector<int32_t> strided_offsets(int64_t n, int64_t stride) {
  std::vector<int32_t> off(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) off[size_t(i)] = int32_t(i * stride);
  return off;
}

// bias (n values, or none: zeros) padded with zeros to a multiple of `width`
std::vector<float> padded_bias(const float* bias, int64_t n, int64_t width) {
  std::vector<float> out(size_t(tiles(n, width) * width), 0.0f);
  if (bias) std::copy(bias, bias + n, out.begin());
  return out;
}

// y (n, o, oh, ow) = the 3x3 convolution of x (n, c, h, w), zero padded by pads (top, left,
// bottom, right), with kernel(o, c, i, j), plus bias (o, or null), relu'd if asked
template <class F, typename Kernel>
void winograd_conv(Ort::KernelContext& ctx, const float* x, int64_t n, int64_t c, int64_t h,
                   int64_t w, const int64_t* pads, int64_t o, Kernel kernel, const float* bias,
                   bool relu, float* y, const Pooling* pooled = nullptr) {
  const int64_t oh = h + pads[0] + pads[2] - 2, ow = w + pads[1] + pads[3] - 2;
  const int64_t strips = tiles(o, kCols);
  const auto u = winograd_kernels<F>(c, o, kernel, false);
  const auto strip_bias = padded_bias(bias, o, kCols);
  const auto koff = strided_offsets(c, 1);
  const int64_t bw = tiles(ow, F::m), blocks = tiles(oh, F::m) * bw;
  const int64_t images = images_per_task(n, blocks);
  const int64_t chunks = tiles(blocks, kWinogradBlocks), chunk = tiles(blocks, chunks);
  WinogradTask t{n,  c,      tiles(c, 8) * 8, h,      w,      pads[0], pads[1],  o,
                 oh, ow,     bw,              blocks, chunk,  chunks,  images,   strips,
                 x,  u.data(), strip_bias.data(), koff.data(), relu,    y,       pooled};
  const int64_t tasks = images > 1 ? tiles(n, images) : n * chunks;
  using Chunk = Tiled<winograd_chunk<Avx2Tile, F>, winograd_chunk<Avx512Tile, F>>;
  run_tasks(ctx, Chunk::pick(), tasks, n * blocks * F::a * F::a * c * o, &t);
}

// The adjoint: the input gradient of a 3x3 convolution (g's, stride 1) from its output's, dy
// (n, g.o, g.oh, g.ow), as dx = B [sum over o of (G k G') * (A dy A')] B' per m x m block of
// dy, each a x a result added into the padded input it came from (per image: the blocks'
// results overlap), bias added, cropped to dx (n, g.c, g.h, g.w).
struct WinogradAdjointTask {
  Geometry g;
  int64_t op, bw, blocks, strips, images;  // op: g.o padded to 8s; strips of 16 input channels
  const OutputGrad* dy;
  const float *u, *bias;                   // u: [a^2][c / 16][o][16]
  const int32_t* koff;                     // 0, 1, ..., o - 1
  float* dx;
};

template <class T, class F>
KG_INLINE void winograd_adjoint_images(void* data, size_t task) {
  constexpr int m = F::m, a = F::a;
  const auto& t = *static_cast<const WinogradAdjointTask*>(data);
  const Geometry& g = t.g;
  const int64_t image0 = int64_t(task) * t.images, images = std::min(t.images, g.n - image0);
  const int64_t blocks = t.blocks, nb = images * blocks, op = t.op, ldc = t.strips * kCols;
  const int64_t rows = m * tiles(g.oh, m), cols = m * t.bw;  // dy's blocks, zero past its edge
  const int64_t arows = rows + a - m, acols = cols + a - m;   // the padded input they reach
  thread_local std::vector<float> dyt_buffer, v_buffer, m_buffer, sum_buffer;
  v_buffer.resize(size_t(a * a * nb * op));
  m_buffer.resize(size_t(a * a * nb * ldc));
  float *const v = v_buffer.data(), *const mm = m_buffer.data();
  for (int64_t i = 0; i < images; ++i) {  // V[xi][block][o] = A dy A'
    t.dy->stage(image0 + i, rows, cols, op, dyt_buffer);
    gradient_blocks<F>(dyt_buffer.data(), cols, op, t.bw, blocks, nb, v + i * blocks * op);
  }
  winograd_products<T>(v, op, nb, a * a, t.u, t.koff, g.o, t.strips, mm);  // M[xi] = V[xi] U[xi]'
  for (int64_t i = 0; i < images; ++i) {
    sum_buffer.assign(size_t(arows * acols * ldc), 0.0f);
    float* const sum = sum_buffer.data();
    for (int64_t b = 0; b < blocks; ++b) {  // B M B', added into the padded input, channels last
      float* to = sum + (m * (b / t.bw) * acols + m * (b % t.bw)) * ldc;
      for (int64_t c8 = 0; c8 < ldc; c8 += 8) {
        v8 p[a][a], out[a][a];
        for (int k = 0; k < a; ++k)
          for (int j = 0; j < a; ++j)
            p[k][j] = load8(mm + ((k * a + j) * nb + i * blocks + b) * ldc + c8);
        sandwich<a, a, true>(F::bt, p, out);
        for (int k = 0; k < a; ++k)
          for (int j = 0; j < a; ++j) {
            float* at = to + (k * acols + j) * ldc + c8;
            store8(at, load8(at) + out[k][j]);
          }
      }
    }
    float* dx = t.dx + (image0 + i) * g.c * g.h * g.w;
    for (int64_t ch = 0; ch < g.c; ++ch) {  // cropped, channels first, plus the bias
      const float bias = t.bias ? t.bias[ch] : 0.0f;
      for (int64_t r = 0; r < g.h; ++r)
        for (int64_t q = 0; q < g.w; ++q)
          dx[(ch * g.h + r) * g.w + q] = sum[((r + g.top) * acols + q + g.left) * ldc + ch] + bias;
    }
  }
}

template <class F, typename Kernel>
void winograd_adjoint(Ort::KernelContext& ctx, const Geometry& g, Kernel kernel,
                      const OutputGrad& dy, const float* bias, float* dx) {
  const auto u = winograd_kernels<F>(g.c, g.o, kernel, true);
  const auto koff = strided_offsets(g.o, 1);
  const int64_t bw = tiles(g.ow, F::m), blocks = tiles(g.oh, F::m) * bw;
  const int64_t images = images_per_task(g.n, blocks);
  WinogradAdjointTask t{g, tiles(g.o, 8) * 8, bw, blocks, tiles(g.c, kCols), images,
                        &dy, u.data(), bias, koff.data(), dx};
  using Images =
      Tiled<winograd_adjoint_images<Avx2Tile, F>, winograd_adjoint_images<Avx512Tile, F>>;
  run_tasks(ctx, Images::pick(), tiles(g.n, images),
            g.n * blocks * F::a * F::a * g.c * g.o, &t);
}

// The kernel gradient: dw = G' [sum over blocks of (B' d B) * (A dy A')] G, the sum over a
// chunk of images' blocks per task: a^2 GEMMs (output channels by blocks, times blocks by
// input channels) added into the task's partial sums, which the caller adds in task order.
struct WinogradGradTask {
  Geometry g;
  int64_t cp, op, bw, blocks, tasks;  // cp: g.c padded to 16s; op: g.o padded to 8s
  const float* x;                     // unpadded
  const OutputGrad* dy;
  const int32_t* koff;                // 0, op, 2 op, ...: the blocks of a group of images
  float* partial;                     // per task: [a^2][o][cp]
};

template <class T, class F>
KG_INLINE void winograd_grad_images(void* data, size_t task) {
  constexpr int m = F::m, a = F::a;
  const auto& t = *static_cast<const WinogradGradTask*>(data);
  const Geometry& g = t.g;
  const int64_t n0 = int64_t(task) * g.n / t.tasks, n1 = (int64_t(task) + 1) * g.n / t.tasks;
  const int64_t bh = tiles(g.oh, m), cp = t.cp, op = t.op;
  const int64_t xrows = m * bh + a - m, xcols = m * t.bw + a - m;
  float* const sum = t.partial + int64_t(task) * a * a * g.o * cp;
  std::memset(sum, 0, sizeof(float) * size_t(a * a * g.o * cp));
  thread_local std::vector<float> staged, v_buffer, w_buffer;
  const int64_t group = images_per_task(n1 - n0, t.blocks);  // <= most_images: koff covers it
  for (int64_t start = n0; start < n1; start += group) {
    const int64_t images = std::min(group, n1 - start), nb = images * t.blocks;
    v_buffer.resize(size_t(a * a * nb * cp));
    w_buffer.resize(size_t(a * a * nb * op));
    float *const v = v_buffer.data(), *const w = w_buffer.data();
    for (int64_t i = 0; i < images; ++i) {
      stage_channels_last(t.x + (start + i) * g.c * g.h * g.w, g.c, g.h, g.w, 0, g.top, g.left,
                          xrows, xcols, cp, staged);  // V[xi][block][c] = B' d B
      input_blocks<F>(staged.data(), xcols, cp, 0, t.bw, 0, t.blocks, nb, v + i * t.blocks * cp);
      t.dy->stage(start + i, m * bh, m * t.bw, op, staged);  // W[xi][block][o] = A dy A'
      gradient_blocks<F>(staged.data(), m * t.bw, op, t.bw, t.blocks, nb, w + i * t.blocks * op);
    }
    for (int64_t xi = 0; xi < a * a; ++xi)  // sum[xi] += W[xi]' V[xi]
      for (int64_t r = 0; r < g.o; r += T::rows) {
        const float* rows[T::rows];
        for (int64_t i = 0; i < T::rows; ++i)
          rows[i] = w + xi * nb * op + std::min(r + i, g.o - 1);
        for (int64_t s = 0; s < cp / kCols; ++s) {
          float spare[kCols] = {}, *to[T::rows];
          for (int64_t i = 0; i < T::rows; ++i)
            to[i] = r + i < g.o ? sum + (xi * g.o + r + i) * cp + s * kCols : spare;
          tile<T, true>(rows, t.koff, v + xi * nb * cp + s * kCols, cp, nb, to);
        }
      }
  }
}

// Whether a convolution of g's window, strides and dilations, with c input and o output
// channels and n images of oh x ow outputs, runs as Winograd (of the tile winograd_tile
// picks; the limits below were measured for F(2x2, 3x3)). Measured against
// the direct tiles (two threads): 0.6-0.8 of their time from 32 channels in and out on images
// of 13x13 to 56x56 outputs; slower with 16 channels (1.1: the transforms weigh more than
// the products they save), on 7x7 images (16 blocks: each task streams all of G k G' for few
// rows) and for one image (G k G' computed for a single use). KGRAPH_WINOGRAD=0: never.
bool winograd(const Geometry& g, int64_t c, int64_t o, int64_t oh, int64_t ow) {
  const int64_t blocks = tiles(oh, 2) * tiles(ow, 2);
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         std::min(c, o) >= kWinogradChannels && blocks >= kWinogradBlocks / 2 &&
         g.n * blocks >= kWinogradMinBlocks && c * o <= kWinogradMaxProducts &&
         !switched_off("KGRAPH_WINOGRAD");
}

// Which Winograd tile, where winograd(): F(4x4, 3x3) (4) where its products are at most 2/3 of
// F(2x2, 3x3)'s (output sizes near multiples of 4: its blocks cover little past the edge) and
// G k G' fits in L2 (c * o <= 128 * 128: a task streams all of it), else F(2x2, 3x3) (2).
// Measured on two threads: F(4x4) 0.7-0.85 of F(2x2)'s time on 11x11 to 56x56 outputs at
// that ratio (0.56-0.65), 1.2-2 times it on 14x14 outputs (0.73) and with 256 channels in and
// out (G k G' 9.4 MB; the kernel gradient's partial sums as large). KGRAPH_WINOGRAD=2 or 4:
// that one (to compare).
constexpr int64_t kWinograd4MaxProducts = 128 * 128;

int winograd_tile(int64_t c, int64_t o, int64_t oh, int64_t ow) {
  const char* value = std::getenv("KGRAPH_WINOGRAD");
  if (value != nullptr && std::string(value) == "2") return 2;
  if (value != nullptr && std::string(value) == "4") return 4;
  const int64_t f2 = tiles(oh, 2) * tiles(ow, 2) * 16, f4 = tiles(oh, 4) * tiles(ow, 4) * 36;
  return 3 * f4 <= 2 * f2 && c * o <= kWinograd4MaxProducts ? 4 : 2;
}

// fn(F()) for the Winograd tile F that winograd_tile(c, o, oh, ow) picks
template <typename Fn>
void with_winograd_tile(int64_t c, int64_t o, int64_t oh, int64_t ow, Fn&& fn) {
  if (winograd_tile(c, o, oh, ow) == 4) return fn(WinogradF4());
  fn(WinogradF2());
}

// dw (o, c, 3, 3 or, with hwio, 3, 3, c, o) = G' M G, M the tasks' partial sums added in
// task order, for the output channels of a task's share
struct WinogradGradOutTask {
  Geometry g;
  bool hwio;
  int64_t cp, sums, tasks;
  const float* partial;
  float* dw;
};

template <class F>
KG_CLONES KG_FMA void winograd_grad_out(void* data, size_t task) {
  constexpr int a = F::a;
  const auto& t = *static_cast<const WinogradGradOutTask*>(data);
  const Geometry& g = t.g;
  const int64_t size = a * a * g.o * t.cp;
  for (int64_t oc = int64_t(task) * g.o / t.tasks; oc < (int64_t(task) + 1) * g.o / t.tasks; ++oc)
    for (int64_t c8 = 0; c8 < g.c; c8 += 8) {
      v8 p[a][a], out[3][3];
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) {
          const float* from = t.partial + ((i * a + j) * g.o + oc) * t.cp + c8;
          p[i][j] = load8(from);
          for (int64_t k = 1; k < t.sums; ++k) p[i][j] += load8(from + k * size);
        }
      sandwich<3, a, true>(F::g, p, out);
      for (int64_t j = 0; j < 8 && c8 + j < g.c; ++j)
        for (int i = 0; i < 3; ++i)
          for (int q = 0; q < 3; ++q)
            t.dw[kernel_at(g, t.hwio, oc, c8 + j, i * 3 + q)] = out[i][q][j];
    }
}

// dw (in the kernel's layout) of g's 3x3 convolution of x by its output gradient dy
template <class F>
void winograd_kernel_grad(Ort::KernelContext& ctx, const Geometry& g, bool hwio, const float* x,
                          const OutputGrad& dy, float* dw) {
  constexpr int a = F::a;
  const int64_t bw = tiles(g.ow, F::m), blocks = tiles(g.oh, F::m) * bw;
  const int64_t cp = tiles(g.c, kCols) * kCols, op = tiles(g.o, 8) * 8;
  const int64_t tasks = std::min(g.n, kWinogradGradTasks);
  std::vector<float> partial(size_t(tasks * a * a * g.o * cp));  // zeroed by each task
  const auto koff = strided_offsets(most_images(blocks) * blocks, op);  // a group's blocks
  WinogradGradTask t{g, cp, op, bw, blocks, tasks, x, &dy, koff.data(), partial.data()};
  using Images = Tiled<winograd_grad_images<Avx2Tile, F>, winograd_grad_images<Avx512Tile, F>>;
  run_tasks(ctx, Images::pick(), tasks, g.n * blocks * a * a * g.c * g.o, &t);
  WinogradGradOutTask out{g, hwio, cp, tasks, std::min(g.o, kWinogradGradTasks), partial.data(),
                          dw};
  run_tasks(ctx, winograd_grad_out<F>, out.tasks, tasks * a * a * g.o * cp, &out);
}

// -- Conv2D -----------------------------------------------------------------------------------
constexpr int64_t kTaskSites = 4 * kTileRows;  // output sites per thread-pool task

struct ConvTask {
  Geometry g;
  const float *x, *packed, *bias;  // x padded; w as strips [o / 16][c kh kw][16]; bias per strip
  const int32_t *site_off, *window_off;
  bool relu;
  float* y;
  int64_t blocks;  // tasks per image
};

template <class T>
KG_INLINE void conv_block(void* data, size_t task) {
  constexpr int64_t R = T::rows;
  const auto& t = *static_cast<const ConvTask*>(data);
  const Geometry& g = t.g;
  const int64_t image = int64_t(task) / t.blocks, sites = g.sites(), depth = g.depth();
  const int64_t first = (int64_t(task) % t.blocks) * kTaskSites;
  const int64_t last = std::min(sites, first + kTaskSites);
  const float* x = t.x + image * g.c * g.hp * g.wp;
  float* y = t.y + image * g.o * sites;
  for (int64_t s = 0; s < tiles(g.o, kCols); ++s) {  // a strip's weights stay in cache
    const v8 zero = {}, b0 = load8(t.bias + s * kCols), b1 = load8(t.bias + s * kCols + 8);
    const int64_t cols = std::min(kCols, g.o - s * kCols);
    for (int64_t p = first; p < last; p += R) {
      const float* a[R];
      tile_rows<T>(x, t.site_off, p, sites, a);
      float out[R][kCols], *rows_out[R];
      for (int64_t i = 0; i < R; ++i) rows_out[i] = out[i];
      tile<T>(a, t.window_off, t.packed + s * depth * kCols, kCols, depth, rows_out);
      for (int64_t i = 0; i < R; ++i) {
        v8 lo = load8(out[i]) + b0, hi = load8(out[i] + 8) + b1;
        if (t.relu) {  // NaN stays NaN, as in onnxruntime's Relu
          lo = lo < zero ? zero : lo;
          hi = hi < zero ? zero : hi;
        }
        store8(out[i], lo);
        store8(out[i] + 8, hi);
      }
      const int64_t rows = std::min(R, sites - p);
      float* to = y + s * kCols * sites + p;  // channels first: the tile's columns are rows
      if (rows == R && cols == kCols) {
        for (int64_t j = 0; j < kCols; ++j)
          for (int64_t i = 0; i < R; ++i) to[j * sites + i] = out[i][j];
      } else {
        for (int64_t j = 0; j < cols; ++j)
          for (int64_t i = 0; i < rows; ++i) to[j * sites + i] = out[i][j];
      }
    }
  }
}

struct PoolTask {
  const float* z;  // (planes, h, w)
  int64_t h, w, planes_per_task, planes;
  const Pooling* pooled;
};

void pool_planes(void* data, size_t task) {
  const auto& t = *static_cast<const PoolTask*>(data);
  const int64_t first = int64_t(task) * t.planes_per_task;
  max_pool_2x2(t.z + first * t.h * t.w, t.h, t.w, first,
               std::min(t.planes_per_task, t.planes - first), *t.pooled);
}

// Layers with few products per output (the first, on images) and stride 1 along w: the
// tile's rows (T::rows) are output channels (their weights broadcast) and its 16 columns 16 output
// sites of one output row, read from the image as two vector loads per (channel, window
// offset), so that the tile stores vectors into the channels-first output instead of the
// site tile's 96 scalars. A row's last tile overlaps the one before it (it recomputes and
// stores the same values) instead of running past the row.
constexpr int64_t kRowTileDepth = 64;  // the site tile above this depth

bool row_tiles(const Geometry& g) {
  return g.sw == 1 && g.ow >= kCols && g.depth() <= kRowTileDepth;
}

struct RowTileTask {
  Geometry g;
  const float *x, *packed, *bias;  // x padded; w as [o / R][c kh kw][R]; bias padded to Rs
  const int32_t* window_off;
  bool relu;
  float* y;                // or, with pooled, a strip's outputs go to a per-thread buffer
  const Pooling* pooled;   // null, or where the 2x2 max pooling of the output goes
};

template <class T>
KG_INLINE void conv_rows_image(void* data, size_t image) {
  typedef typename T::V V;
  constexpr int64_t R = T::rows, L = int64_t(sizeof(V) / sizeof(float)), NV = kCols / L;
  const auto& t = *static_cast<const RowTileTask*>(data);
  const Geometry& g = t.g;
  const int64_t depth = g.depth(), sites = g.sites();
  const float* x = t.x + int64_t(image) * g.c * g.hp * g.wp;
  thread_local std::vector<float> strip;  // pooled: a strip's outputs, in L1 (see winograd_chunk)
  if (t.pooled) strip.resize(size_t(R * sites + kPoolSlack));
  const V zero = {};
  for (int64_t ot = 0; ot < tiles(g.o, R); ++ot) {
    const float* w = t.packed + ot * depth * R;
    const int64_t channels = std::min(R, g.o - ot * R);
    float* y = t.pooled ? strip.data() : t.y + (int64_t(image) * g.o + ot * R) * sites;
    for (int64_t r = 0; r < g.oh; ++r)
      for (int64_t col = 0; col < g.ow; col += kCols) {
        const int64_t at = std::min(col, g.ow - kCols);  // the last tile overlaps
        const float* from = x + r * g.sh * g.wp + at;
        V acc[R][NV];
        for (int64_t i = 0; i < R; ++i)
          for (int64_t j = 0; j < NV; ++j) acc[i][j] = zero + t.bias[ot * R + i];
        for (int64_t k = 0; k < depth; ++k) {
          V xv[NV];
          for (int64_t j = 0; j < NV; ++j)
            std::memcpy(&xv[j], from + t.window_off[k] + j * L, sizeof(V));
          const float* wk = w + k * R;
#pragma GCC unroll 16
          for (int64_t i = 0; i < R; ++i)
#pragma GCC unroll 2
            for (int64_t j = 0; j < NV; ++j) acc[i][j] += wk[i] * xv[j];
        }
        for (int64_t i = 0; i < channels; ++i)
          for (int64_t j = 0; j < NV; ++j) {
            V q = acc[i][j];
            if (t.relu) q = q < zero ? zero : q;  // NaN stays NaN, as in onnxruntime's Relu
            std::memcpy(y + i * sites + r * g.ow + at + j * L, &q, sizeof(V));
          }
      }
    if (t.pooled)
      max_pool_2x2(strip.data(), g.oh, g.ow, int64_t(image) * g.o + ot * R, channels,
                   *t.pooled);
  }
}

// w read as rows w[row_at[r] + c * col_stride] (c < cols), packed as strips of `width`
// columns: [cols / width][rows][width], zero padded
std::vector<float> pack(const float* w, const std::vector<int64_t>& row_at, int64_t cols,
                        int64_t col_stride, int64_t width = kCols) {
  const int64_t rows = int64_t(row_at.size());
  std::vector<float> out(size_t(tiles(cols, width) * rows * width), 0.0f);
  for (int64_t s = 0; s < tiles(cols, width); ++s)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < width && s * width + j < cols; ++j)
        out[size_t((s * rows + r) * width + j)] =
            w[row_at[size_t(r)] + (s * width + j) * col_stride];
  return out;
}

const float* optional_input(Ort::KernelContext& ctx, size_t k, int64_t size, const char* op) {
  return optional_vector(ctx, k, size, op, "a bias (channels,)");
}

struct Conv2DKernel : Attrs {
  bool relu;
  int64_t pool;  // 2: a 2x2 max pooling at stride 2 follows (see Pooling)

  explicit Conv2DKernel(const OrtKernelInfo* info)
      : Attrs(info),
        relu(Ort::ConstKernelInfo(info).GetAttribute<int64_t>("relu") != 0),
        pool(int_attr(info, "pool", 0)) {
    if (pool != 0 && pool != 2)
      ORT_CXX_API_THROW("kgraph.Conv2D: pool 0 or 2 expected", ORT_INVALID_ARGUMENT);
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const Geometry g = conv_geometry("Conv2D", shape_of(ctx, 0),
                                     onnx_kernel_shape(shape_of(ctx, 1), hwio), *this);
    const float* bias = optional_input(ctx, 2, g.o, "Conv2D");
    if (!pool) {
      float* y = ctx.GetOutput(0, {g.n, g.o, g.oh, g.ow}).GetTensorMutableData<float>();
      if (g.n * g.o * g.sites() > 0) convolve(ctx, g, bias, y, nullptr);
      return;
    }
    const std::vector<int64_t> shape{g.n, g.o, g.oh / 2, g.ow / 2};
    const Pooling pooled{g.oh / 2, g.ow / 2, ctx.GetOutput(0, shape).GetTensorMutableData<float>(),
                         ctx.GetOutput(1, shape).GetTensorMutableData<uint8_t>()};
    if (g.n * g.o * pooled.oh * pooled.ow == 0) return;
    convolve(ctx, g, bias, nullptr, &pooled);
  }

  // y = the convolution (bias, relu), or, where pooled, its pooling: as the Winograd blocks
  // and the row tile's strips are made; the site tile's output whole, then pooled
  void convolve(Ort::KernelContext& ctx, const Geometry& g, const float* bias, float* y,
                const Pooling* pooled) const {
    const float* w = ctx.GetInput(1).GetTensorData<float>();
    if (winograd(g, g.c, g.o, g.oh, g.ow)) {
      const auto at = [&](int64_t o, int64_t c, int64_t i, int64_t j) {
        return w[kernel_at(g, hwio, o, c, i * 3 + j)];
      };
      const float* x = ctx.GetInput(0).GetTensorData<float>();
      return with_winograd_tile(g.c, g.o, g.oh, g.ow, [&](auto f) {
        winograd_conv<decltype(f)>(ctx, x, g.n, g.c, g.h, g.w, pads.data(), g.o, at, bias, relu,
                                   y, pooled);
      });
    }
    std::vector<float> buffer;
    const float* x = padded_input(ctx, g, ctx.GetInput(0).GetTensorData<float>(), buffer);
    const auto site_off = g.site_offsets(), window_off = g.window_offsets();
    // the kernel as rows (c, window offset) by columns o
    std::vector<int64_t> row_at(size_t(g.depth()));
    for (int64_t r = 0; r < g.depth(); ++r)
      row_at[size_t(r)] = kernel_at(g, hwio, 0, r / (g.kh * g.kw), r % (g.kh * g.kw));
    if (row_tiles(g)) {  // strips of the tile's rows of output channels
      const bool wide = wide_tiles();
      const int64_t rows = wide ? Avx512Tile::rows : Avx2Tile::rows;
      const auto packed = pack(w, row_at, g.o, hwio ? 1 : g.depth(), rows);
      const auto row_bias = padded_bias(bias, g.o, rows);
      RowTileTask t{g, x, packed.data(), row_bias.data(), window_off.data(), relu, y, pooled};
      using Rows = Tiled<conv_rows_image<Avx2Tile>, conv_rows_image<Avx512Tile>>;
      return run_tasks(ctx, wide ? Rows::wide : Rows::narrow, g.n,
                       g.n * g.sites() * g.o * g.depth(), &t);
    }
    std::vector<float> z(pooled ? size_t(g.n * g.o * g.sites() + kPoolSlack) : 0);
    const auto packed = pack(w, row_at, g.o, hwio ? 1 : g.depth());
    const auto strip_bias = padded_bias(bias, g.o, kCols);
    ConvTask t{g, x, packed.data(), strip_bias.data(), site_off.data(), window_off.data(), relu,
               pooled ? z.data() : y, tiles(g.sites(), kTaskSites)};
    run_tasks(ctx, Tiled<conv_block<Avx2Tile>, conv_block<Avx512Tile>>::pick(), g.n * t.blocks,
              g.n * g.sites() * g.o * g.depth(), &t);
    if (!pooled) return;
    PoolTask p{z.data(), g.oh, g.ow, 8, g.n * g.o, pooled};
    run_tasks(ctx, pool_planes, tiles(g.n * g.o, p.planes_per_task), g.n * g.o * g.sites(), &p);
  }
};

// -- ConvTranspose2D --------------------------------------------------------------------------
// The transposed convolution is the forward one's geometry read backwards: its input x is a
// Conv's output (g.o channels, g.oh x g.ow sites), its output that Conv's (padded) input.
struct TransposeTask {
  Geometry g;
  const float *x, *packed, *bias;  // packed w: [kh kw][c / 16][o][16]
  const int32_t *site_off, *channel_off;
  float* y;
};

template <class T>
KG_INLINE void conv_transpose_strip(void* data, size_t task) {
  constexpr int64_t R = T::rows;
  const auto& t = *static_cast<const TransposeTask*>(data);
  const Geometry& g = t.g;
  const int64_t strips = tiles(g.c, kCols), image = int64_t(task) / strips;
  const int64_t s = int64_t(task) % strips, sites = g.sites(), area = g.hp * g.wp;
  const float* x = t.x + image * g.o * sites;
  thread_local std::vector<float> sum;  // this strip's padded output, sites major (per thread:
  sum.assign(size_t(area * kCols), 0.0f);  // see winograd_chunk)
  for (int64_t p = 0; p < sites; p += R) {
    const float* a[R];
    for (int64_t i = 0; i < R; ++i) a[i] = x + (p + i < sites ? p + i : p);
    for (int64_t y = 0; y < g.kh; ++y)
      for (int64_t xk = 0; xk < g.kw; ++xk) {
        float acc[R][kCols], *to[R];
        for (int64_t i = 0; i < R; ++i) to[i] = acc[i];
        tile<T>(a, t.channel_off,
                t.packed + ((y * g.kw + xk) * tiles(g.c, kCols) + s) * g.o * kCols, kCols, g.o,
                to);
        for (int64_t i = 0; i < R && p + i < sites; ++i) {
          float* at = sum.data() + (t.site_off[p + i] + y * g.dh * g.wp + xk * g.dw) * kCols;
          store8(at, load8(at) + load8(acc[i]));
          store8(at + 8, load8(at + 8) + load8(acc[i] + 8));
        }
      }
  }
  for (int64_t j = 0; j < kCols && s * kCols + j < g.c; ++j) {  // crop the padding, channels first
    const int64_t ch = s * kCols + j;
    const float b = t.bias ? t.bias[ch] : 0.0f;
    float* out = t.y + (image * g.c + ch) * g.h * g.w;
    for (int64_t r = 0; r < g.h; ++r)
      for (int64_t q = 0; q < g.w; ++q)
        out[r * g.w + q] = sum[size_t(((r + g.top) * g.wp + q + g.left) * kCols + j)] + b;
  }
}

struct ConvTranspose2DKernel : Attrs {
  std::vector<int64_t> output_padding;
  std::vector<int64_t> unpooled;  // attr pool_shape (h, w): x is pooled, input 3 its offsets

  explicit ConvTranspose2DKernel(const OrtKernelInfo* info)
      : Attrs(info),
        output_padding(Ort::ConstKernelInfo(info).GetAttributes<int64_t>("output_padding")) {
    if (output_padding.size() != 2 || output_padding[0] < 0 || output_padding[1] < 0)
      ORT_CXX_API_THROW("kgraph.ConvTranspose2D: 2 output_padding >= 0 expected",
                        ORT_INVALID_ARGUMENT);
    try {
      unpooled = Ort::ConstKernelInfo(info).GetAttributes<int64_t>("pool_shape");
    } catch (const Ort::Exception&) {
    }
    if (!unpooled.empty() && (unpooled.size() != 2 || unpooled[0] < 0 || unpooled[1] < 0))
      ORT_CXX_API_THROW("kgraph.ConvTranspose2D: pool_shape (h, w) expected",
                        ORT_INVALID_ARGUMENT);
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    auto xs = shape_of(ctx, 0);
    const auto ws = onnx_kernel_shape(shape_of(ctx, 1), hwio);
    if (!unpooled.empty() && xs.size() == 4) xs = {xs[0], xs[1], unpooled[0], unpooled[1]};
    if (xs.size() != 4 || ws.size() != 4 || xs[1] != ws[0])
      bad_shapes("ConvTranspose2D", "x (n, c, h, w) and a kernel (c, o, kh, kw) expected");
    // the Conv whose input gradient this is: input (n, ws[1], full size), output x
    Geometry g{xs[0], ws[1], 0, 0, ws[0], ws[2], ws[3], strides[0], strides[1], dilations[0],
               dilations[1], pads[0], pads[1], 0, 0, xs[2], xs[3]};
    g.hp = g.sh * (g.oh - 1) + (g.kh - 1) * g.dh + 1 + output_padding[0];
    g.wp = g.sw * (g.ow - 1) + (g.kw - 1) * g.dw + 1 + output_padding[1];
    g.h = g.hp - pads[0] - pads[2];
    g.w = g.wp - pads[1] - pads[3];
    if (g.h < 1 || g.w < 1) bad_shapes("ConvTranspose2D", "pads smaller than the output");
    if (g.o * g.sites() >= (int64_t(1) << 31))
      bad_shapes("ConvTranspose2D", "images under 2^31 values");
    const float* bias = optional_input(ctx, 2, g.c, "ConvTranspose2D");
    float* y = ctx.GetOutput(0, {g.n, g.c, g.h, g.w}).GetTensorMutableData<float>();
    if (g.n * g.c == 0) return;
    const OutputGrad dy = output_grad(ctx, 0, 3, !unpooled.empty(), g.n, g.o, g.oh, g.ow,
                                      "ConvTranspose2D");
    // the Conv's kernel (o, c, kh, kw): per window offset, rows o by columns c
    const float* w = ctx.GetInput(1).GetTensorData<float>();
    if (winograd(g, g.c, g.o, g.oh, g.ow) && output_padding[0] == 0 &&
        output_padding[1] == 0 && tiles(g.oh, 2) * tiles(g.ow, 2) <= kWinogradAdjointBlocks &&
        std::max({pads[0], pads[1], pads[2], pads[3]}) == 0) {
      const auto at = [&](int64_t o, int64_t c, int64_t i, int64_t j) {
        return w[kernel_at(g, hwio, o, c, i * 3 + j)];
      };
      return with_winograd_tile(g.c, g.o, g.oh, g.ow, [&](auto f) {
        winograd_adjoint<decltype(f)>(ctx, g, at, dy, bias, y);
      });
    }
    if (winograd(g, g.o, g.c, g.h, g.w) && output_padding[0] == 0 &&
        output_padding[1] == 0 && std::min({pads[0], pads[1], pads[2], pads[3]}) >= 1 &&
        std::max({pads[0], pads[1], pads[2], pads[3]}) <= 2) {
      // the 3x3 convolution of x padded by 2 - pads with the kernel turned half round. Not
      // for unpadded ("valid") layers: their padding by 2 makes the blocks many zeros (on a
      // 13x13 output, 205 MFLOP of products against the direct scatter's 285, and slower)
      const int64_t full[4] = {2 - pads[0], 2 - pads[1], 2 - pads[2], 2 - pads[3]};
      const auto at = [&](int64_t c, int64_t o, int64_t i, int64_t j) {
        return w[kernel_at(g, hwio, o, c, (2 - i) * 3 + 2 - j)];
      };
      std::vector<float> dense;
      const float* x = dy.unpooled(ctx, dense);
      return with_winograd_tile(g.o, g.c, g.h, g.w, [&](auto f) {
        winograd_conv<decltype(f)>(ctx, x, g.n, g.o, g.oh, g.ow, full, g.c, at, bias, false, y);
      });
    }
    std::vector<float> packed;
    std::vector<int64_t> row_at(size_t(g.o));
    for (int64_t k = 0; k < g.kh * g.kw; ++k) {
      for (int64_t o = 0; o < g.o; ++o) row_at[size_t(o)] = kernel_at(g, hwio, o, 0, k);
      const auto strip = pack(w, row_at, g.c, hwio ? g.o : g.kh * g.kw);
      packed.insert(packed.end(), strip.begin(), strip.end());
    }
    const auto channel_off = strided_offsets(g.o, g.sites());
    const auto site_off = g.site_offsets();
    std::vector<float> dense;
    TransposeTask t{g, dy.unpooled(ctx, dense), packed.data(), bias, site_off.data(),
                    channel_off.data(), y};
    run_tasks(ctx, Tiled<conv_transpose_strip<Avx2Tile>, conv_transpose_strip<Avx512Tile>>::pick(),
              g.n * tiles(g.c, kCols),
              g.n * g.sites() * g.o * g.c * g.kh * g.kw, &t);
  }
};

// -- Conv2DKernelGrad -------------------------------------------------------------------------
// Tasks wanted. Each takes a chunk of the images (each image's input and gradient are read
// once, from cache, into a partial sum of the whole kernel gradient) and, when images are
// fewer than the tasks, a block of the (channel, window offset) rows.
constexpr int64_t kGradTasks = 8;
constexpr int64_t kGradSites = 256;   // output sites per pass over the rows

struct KernelGradTask {
  Geometry g;
  const float* x;  // padded
  const OutputGrad* grad;
  const int32_t *window_off, *site_off;
  int64_t row_blocks, block_rows, image_chunks, ldg;
  float* partial;  // per image chunk: [c kh kw][ldg]
};

template <class T>
KG_INLINE void kernel_grad_block(void* data, size_t task) {
  constexpr int64_t R = T::rows;
  const auto& t = *static_cast<const KernelGradTask*>(data);
  const Geometry& g = t.g;
  const int64_t block = int64_t(task) % t.row_blocks, chunk = int64_t(task) / t.row_blocks;
  const int64_t depth = g.depth(), sites = g.sites();
  const int64_t first = block * t.block_rows, last = std::min(depth, first + t.block_rows);
  const int64_t n0 = chunk * g.n / t.image_chunks, n1 = (chunk + 1) * g.n / t.image_chunks;
  float* sum = t.partial + chunk * depth * t.ldg;
  thread_local std::vector<float> gt;  // this image's gradient, sites by channels (per
  for (int64_t image = n0; image < n1; ++image) {  // thread: see winograd_chunk)
    t.grad->stage(image, g.oh, g.ow, t.ldg, gt);
    const float* x = t.x + image * g.c * g.hp * g.wp;
    for (int64_t p = 0; p < sites; p += kGradSites) {  // the chunk's gradient stays in cache
      for (int64_t r = first; r < last; r += R) {
        const float* a[R];
        tile_rows<T>(x, t.window_off, r, last, a);
        for (int64_t s = 0; s < t.ldg / kCols; ++s) {
          float spare[kCols] = {}, *to[R];
          for (int64_t i = 0; i < R; ++i)
            to[i] = r + i < last ? sum + (r + i) * t.ldg + s * kCols : spare;
          tile<T, true>(a, t.site_off + p, gt.data() + p * t.ldg + s * kCols, t.ldg,
                        std::min(kGradSites, sites - p), to);
        }
      }
    }
  }
}

struct Conv2DKernelGradKernel : Attrs {
  std::vector<int64_t> kernel;
  bool pooled;  // attr pool = 2: the gradient is pooled, input 2 its offsets (see OutputGrad)

  explicit Conv2DKernelGradKernel(const OrtKernelInfo* info)
      : Attrs(info),
        kernel(Ort::ConstKernelInfo(info).GetAttributes<int64_t>("kernel_shape")),
        pooled(int_attr(info, "pool", 0) == 2) {
    if (kernel.size() != 2 || kernel[0] < 1 || kernel[1] < 1)
      ORT_CXX_API_THROW("kgraph.Conv2DKernelGrad: 2 kernel_shape >= 1 expected",
                        ORT_INVALID_ARGUMENT);
    if (int_attr(info, "pool", 0) != 0 && !pooled)
      ORT_CXX_API_THROW("kgraph.Conv2DKernelGrad: pool 0 or 2 expected", ORT_INVALID_ARGUMENT);
  }

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto xs = shape_of(ctx, 0), gs = shape_of(ctx, 1);
    if (gs.size() != 4)
      bad_shapes("Conv2DKernelGrad", "x (n, c, h, w) and its gradient (n, o, oh, ow) expected");
    const Geometry g = conv_geometry("Conv2DKernelGrad", xs, {gs[1], xs.size() == 4 ? xs[1] : 0,
                                                             kernel[0], kernel[1]}, *this);
    if (!pooled && gs != std::vector<int64_t>{g.n, g.o, g.oh, g.ow})
      bad_shapes("Conv2DKernelGrad", "a gradient of the convolution's output shape");
    const OutputGrad dy =
        output_grad(ctx, 1, 2, pooled, g.n, g.o, g.oh, g.ow, "Conv2DKernelGrad");
    float* dw = ctx.GetOutput(0, hwio ? std::vector<int64_t>{g.kh, g.kw, g.c, g.o}
                                      : std::vector<int64_t>{g.o, g.c, g.kh, g.kw})
                    .GetTensorMutableData<float>();
    const int64_t depth = g.depth(), ldg = tiles(g.o, kCols) * kCols;
    if (g.n * g.sites() == 0 || depth * g.o == 0) {
      std::fill(dw, dw + g.o * depth, 0.0f);
      return;
    }
    if (winograd(g, g.c, g.o, g.oh, g.ow)) {
      const float* x = ctx.GetInput(0).GetTensorData<float>();
      return with_winograd_tile(g.c, g.o, g.oh, g.ow, [&](auto f) {
        winograd_kernel_grad<decltype(f)>(ctx, g, hwio, x, dy, dw);
      });
    }
    std::vector<float> buffer;
    const float* x = padded_input(ctx, g, ctx.GetInput(0).GetTensorData<float>(), buffer);
    const int64_t chunks = std::min(g.n, kGradTasks);
    const int64_t row_blocks = std::min(tiles(depth, kTileRows), tiles(kGradTasks, chunks));
    const int64_t block_rows = tiles(tiles(depth, kTileRows), row_blocks) * kTileRows;
    std::vector<float> partial(size_t(chunks * depth * ldg), 0.0f);
    const auto site_off = g.site_offsets(), window_off = g.window_offsets();
    KernelGradTask t{g,          x,          &dy,    window_off.data(), site_off.data(),
                     row_blocks, block_rows, chunks, ldg,               partial.data()};
    run_tasks(ctx, Tiled<kernel_grad_block<Avx2Tile>, kernel_grad_block<Avx512Tile>>::pick(),
              row_blocks * chunks, g.n * g.sites() * g.o * depth, &t);
    const size_t size = size_t(depth * ldg);  // sum the chunks into the first, in order
    for (int64_t i = 1; i < chunks; ++i)
      for (size_t j = 0; j < size; ++j) partial[j] += partial[size_t(i) * size + j];
    for (int64_t k = 0; k < depth; ++k)  // then into the kernel's layout
      for (int64_t ch = 0; ch < g.o; ++ch)
        dw[kernel_at(g, hwio, ch, k / (g.kh * g.kw), k % (g.kh * g.kw))] =
            partial[size_t(k * ldg + ch)];
  }
};

// the window offsets of a pooling (output 1 of Conv2D, input 3 of ConvTranspose2D, input 2 of
// Conv2DKernelGrad) are uint8
FloatOp<Conv2DKernel, 3, 2, 2, 1, 0, 0b10> conv2d_op("Conv2D");
FloatOp<ConvTranspose2DKernel, 4, 1, 2, 1, 0b1000> conv_transpose2d_op("ConvTranspose2D");
FloatOp<Conv2DKernelGradKernel, 3, 1, 2, 1, 0b100> conv2d_kernel_grad_op("Conv2DKernelGrad");

}  // namespace

void add_conv_ops(Ort::CustomOpDomain& domain) {
  domain.Add(&conv2d_op);
  domain.Add(&conv_transpose2d_op);
  domain.Add(&conv2d_kernel_grad_op);
}

}  // namespace kgops
