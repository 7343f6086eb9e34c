// Keras' LSTM (default activations) as onnxruntime operators of the "kgraph" domain:
//
//   LSTMGates(a, b, c)           one step after its products: z = a + b split into gates
//                                i, f, c~, o; c' = σ(f) c + σ(i) tanh(c~); h = σ(o) tanh(c').
//                                Outputs h, c' and the activations [σ(i), σ(f), tanh(c~),
//                                σ(o), tanh(c')] (n, 5u) its gradient reads.
//   LSTMGatesGrad(dh, dc, gates, c)  its vector-Jacobian product from those activations:
//                                dz (= da = db), dc.
//   LSTMSequence(x, r, h0, c0, bias)   the whole recurrence, a Scan whose step is
//                                LSTMGates(x[t] + bias, h r, c): x (T, n, 4u) the input
//                                products, bias (4u) optional (x then includes it), r (u, 4u)
//                                the recurrent kernel; attr reverse (steps from the last).
//                                Outputs, each optional: the last h and c (n, u); per step
//                                (aligned with x) h, c (T, n, u), the activations (T, n, 5u),
//                                and the h and c it started from.
//   LSTMSequenceGrad(saved, c_prev, r_t, dh_last, dc_last, dy)   the reverse recurrence:
//                                per step dz = LSTMGatesGrad(dh + dy[t], dc, saved[t],
//                                c_prev[t]), dh <- dz r_t, dc <- its dc; r_t (4u, u); dy
//                                optional; attr reverse (this loop's direction). Outputs dh, dc
//                                after the last step, dz (T, n, 4u) and, optional, the bias
//                                gradient: dz summed over steps and rows, (1, 1, 4u).
//
// The sequence operators split the batch rows between threads, each running every step of
// its rows (rows do not interact): no synchronisation per step, and the step's product is
// a register-blocked kernel over the recurrent kernel packed once per call. These loops may
// contract into FMA: their results are compared with the Scan's to a tolerance, not bit for
// bit (unlike AdamUpdate's in ortops.cc).
#include "ortops.h"

namespace kgops {
namespace {

// exp(x) with x clamped to [-80, 80]: 2^n e^r with |r| <= ln2/2, e^r by its degree-7 Taylor
// polynomial (error below 1e-8 relative), 2^n put into the exponent bits. The clamp keeps
// every intermediate a normal float (denormals cost microcode assists) and changes no
// sigmoid or tanh result beyond float32's resolution (e^-80 = 1.8e-35).
inline float exp_clamped(float x) {
  x = std::min(std::max(x, -80.0f), 80.0f);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  float t = x * 1.44269504088896341f + shifter;
  float n = t - shifter;
  int32_t ni = int32_t(bits(t) - bits(shifter));
  float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * from_bits(uint32_t(ni + 127) << 23);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_clamped(-x)); }

// tanh: its Taylor series (to x^11) below |x| = 0.4, where (1 - e^-2|x|) / (1 + e^-2|x|) would
// lose relative precision to cancellation; that ratio above, with x's sign.
inline float tanh_approx(float x) {
  float ax = std::fabs(x);
  float x2 = x * x;
  float s = -1382.0f / 155925;
  s = s * x2 + 62.0f / 2835;
  s = s * x2 - 17.0f / 315;
  s = s * x2 + 2.0f / 15;
  s = s * x2 - 1.0f / 3;
  float small = x + x * x2 * s;
  float e = exp_clamped(-2.0f * ax);
  float large = from_bits(bits((1.0f - e) / (1.0f + e)) | (bits(x) & 0x80000000u));
  return pick(ax < 0.4f, small, large);
}


// -- LSTMGates ----------------------------------------------------------------------------
struct LstmTask {
  int64_t units;
  const float *dh, *dc, *a, *b, *c, *saved;
  float *h, *c_out, *saved_out, *dz, *dc_out;
};

// unit k of an LSTM step from z = a + b (blocks i, f, c~, o of u columns): the new carry, h,
// and the five activations its gradient reads (i, f, c~, o, tanh(c'): blocks of `saved`)
KG_CLONES KG_FMA void lstm_row(const float* __restrict a, const float* __restrict b,
                        const float* __restrict c, float* __restrict h,
                        float* __restrict c_out, float* __restrict saved, int64_t u) {
  for (int64_t k = 0; k < u; ++k) {
    const float i = sigmoid(a[k] + b[k]);
    const float f = sigmoid(a[u + k] + b[u + k]);
    const float cand = tanh_approx(a[2 * u + k] + b[2 * u + k]);
    const float o = sigmoid(a[3 * u + k] + b[3 * u + k]);
    const float c_new = f * c[k] + i * cand;
    const float tc = tanh_approx(c_new);
    c_out[k] = c_new;
    h[k] = o * tc;
    saved[k] = i;
    saved[u + k] = f;
    saved[2 * u + k] = cand;
    saved[3 * u + k] = o;
    saved[4 * u + k] = tc;
  }
}

// its vector-Jacobian product from the saved activations: products and sums only
KG_CLONES KG_FMA void lstm_grad_row(const float* __restrict dh, const float* __restrict dc,
                                    const float* __restrict saved, const float* __restrict c,
                                    float* __restrict dz, float* __restrict dc_out, int64_t u) {
  for (int64_t k = 0; k < u; ++k) {
    const float i = saved[k], f = saved[u + k], cand = saved[2 * u + k];
    const float o = saved[3 * u + k], tc = saved[4 * u + k];
    const float dct = dc[k] + dh[k] * o * (1.0f - tc * tc);
    dz[k] = dct * cand * i * (1.0f - i);
    dz[u + k] = dct * c[k] * f * (1.0f - f);
    dz[2 * u + k] = dct * i * (1.0f - cand * cand);
    dz[3 * u + k] = dh[k] * tc * o * (1.0f - o);
    dc_out[k] = dct * f;
  }
}

void lstm_rows(void* data, size_t n) {
  const auto& t = *static_cast<LstmTask*>(data);
  const int64_t u = t.units;
  lstm_row(t.a + n * 4 * u, t.b + n * 4 * u, t.c + n * u, t.h + n * u, t.c_out + n * u,
           t.saved_out + n * 5 * u, u);
}

void lstm_grad_rows(void* data, size_t n) {
  const auto& t = *static_cast<LstmTask*>(data);
  const int64_t u = t.units;
  lstm_grad_row(t.dh + n * u, t.dc + n * u, t.saved + n * 5 * u, t.c + n * u,
                t.dz + n * 4 * u, t.dc_out + n * u, u);
}

// (rows, units) of the gate inputs a, b (rows, 4 units) and the carry c (rows, units)
void lstm_shape(Ort::KernelContext& ctx, int64_t* rows, int64_t* units) {
  const auto shape = shape_of(ctx, 0), other = shape_of(ctx, 1), carry = shape_of(ctx, 2);
  if (shape.size() != 2 || shape[1] % 4 || other != shape || carry.size() != 2 ||
      carry[0] != shape[0] || carry[1] * 4 != shape[1])
    ORT_CXX_API_THROW("kgraph.LSTMGates: gate inputs (n, 4u) and a carry (n, u) expected",
                      ORT_INVALID_ARGUMENT);
  *rows = shape[0];
  *units = shape[1] / 4;
}

struct LstmGatesKernel {
  explicit LstmGatesKernel(const OrtKernelInfo*) {}
  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    int64_t rows, units;
    lstm_shape(ctx, &rows, &units);
    auto h = ctx.GetOutput(0, {rows, units});
    auto c = ctx.GetOutput(1, {rows, units});
    auto saved = ctx.GetOutput(2, {rows, 5 * units});
    LstmTask task{units, nullptr, nullptr,
                  ctx.GetInput(0).GetTensorData<float>(), ctx.GetInput(1).GetTensorData<float>(),
                  ctx.GetInput(2).GetTensorData<float>(), nullptr,
                  h.GetTensorMutableData<float>(), c.GetTensorMutableData<float>(),
                  saved.GetTensorMutableData<float>(), nullptr, nullptr};
    run_tasks(ctx, lstm_rows, rows, rows * units, &task);
  }
};

struct LstmGatesGradKernel {
  explicit LstmGatesGradKernel(const OrtKernelInfo*) {}
  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto carry = shape_of(ctx, 3);
    if (carry.size() != 2)
      ORT_CXX_API_THROW("kgraph.LSTMGatesGrad: a carry (n, u) expected", ORT_INVALID_ARGUMENT);
    const int64_t rows = carry[0], units = carry[1];
    const std::vector<int64_t> widths{units, units, 5 * units};
    for (size_t k = 0; k < 3; ++k) {
      const auto s = shape_of(ctx, k);
      if (s.size() != 2 || s[0] != rows || s[1] != widths[k])
        ORT_CXX_API_THROW("kgraph.LSTMGatesGrad: dh, dc (n, u) and the saved gates (n, 5u) "
                          "expected", ORT_INVALID_ARGUMENT);
    }
    auto dz = ctx.GetOutput(0, {rows, 4 * units});
    auto dc = ctx.GetOutput(1, {rows, units});
    LstmTask task{units, ctx.GetInput(0).GetTensorData<float>(),
                  ctx.GetInput(1).GetTensorData<float>(), nullptr, nullptr,
                  ctx.GetInput(3).GetTensorData<float>(), ctx.GetInput(2).GetTensorData<float>(),
                  nullptr, nullptr, nullptr, dz.GetTensorMutableData<float>(),
                  dc.GetTensorMutableData<float>()};
    run_tasks(ctx, lstm_grad_rows, rows, rows * units, &task);
  }
};


// -- the step's product: rows of A (m x k) times B (k x n), B packed in column strips -------
constexpr int64_t kStrip = 16;                      // columns of a packed strip: two v8

inline int64_t strips_of(int64_t n) { return (n + kStrip - 1) / kStrip; }

// B (k x n, row-major) as strips of 16 columns, each k rows of 16 floats, zero padded
void pack_strips(const float* b, int64_t k, int64_t n, float* out) {
  for (int64_t s = 0; s < strips_of(n); ++s)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < kStrip; ++j) {
        const int64_t col = s * kStrip + j;
        *out++ = col < n ? b[p * n + col] : 0.0f;
      }
}

// c (m rows of `strips` * 16 floats) = a (m x k, row stride lda) times the packed b: four
// rows by one strip at a time, eight accumulators in registers
KG_CLONES KG_FMA void product_rows(const float* a, int64_t lda, int64_t m, int64_t k,
                                   const float* bp, int64_t strips, float* c) {
  const int64_t ldc = strips * kStrip;
  for (int64_t i = 0; i < m; i += 4) {
    const float* a0 = a + i * lda;  // rows past m repeat row i; they are not stored
    const float* a1 = i + 1 < m ? a0 + lda : a0;
    const float* a2 = i + 2 < m ? a0 + 2 * lda : a0;
    const float* a3 = i + 3 < m ? a0 + 3 * lda : a0;
    for (int64_t s = 0; s < strips; ++s) {
      const float* b = bp + s * k * kStrip;
      v8 c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {};
      for (int64_t p = 0; p < k; ++p) {
        const v8 b0 = load8(b + p * kStrip), b1 = load8(b + p * kStrip + 8);
        c00 += a0[p] * b0; c01 += a0[p] * b1;
        c10 += a1[p] * b0; c11 += a1[p] * b1;
        c20 += a2[p] * b0; c21 += a2[p] * b1;
        c30 += a3[p] * b0; c31 += a3[p] * b1;
      }
      float* out = c + i * ldc + s * kStrip;
      const v8 rows[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
      for (int64_t r = 0; r < 4 && i + r < m; ++r) {
        store8(out + r * ldc, rows[r][0]);
        store8(out + r * ldc + 8, rows[r][1]);
      }
    }
  }
}

// -- LSTMSequence / LSTMSequenceGrad --------------------------------------------------------
// Batch rows per thread-pool task: 16 from 64 rows (BiLSTM steps ~2-3% faster than with 8 in
// six alternating pairs), else 8 (a batch of 16 or 32 still splits between threads).
inline int64_t rows_per_task(int64_t n) { return n >= 64 ? 16 : 8; }
inline int64_t row_blocks(int64_t n) { return (n + rows_per_task(n) - 1) / rows_per_task(n); }

// Tensors of a sequence operator: rows (n), units (u), steps (T); nullptr = output omitted.
// The gradient's carries ride in the forward's places: h0, c0 are its dh, dc after the last
// step; h_last, c_last its dh, dc before the first.
// bias: the forward's (4u) or nullptr; dbias: the gradient's per-block sums of dz (blocks, 4u)
// or nullptr.
struct SequenceTask {
  int64_t steps, n, u, strips;
  bool reverse;
  const float *x, *packed, *h0, *c0, *dy, *saved_in, *c_prev, *bias;
  float *h_last, *c_last, *hs, *cs, *saved, *h_hist, *c_hist, *dz, *dbias;
};

inline void copy_rows(const float* from, float* to, int64_t values) {
  if (to != nullptr) std::memcpy(to, from, sizeof(float) * size_t(values));
}

// every step of rows [r0, r0 + m) of the forward recurrence
void sequence_rows(void* data, size_t block) {
  const auto& t = *static_cast<const SequenceTask*>(data);
  const int64_t u = t.u, rows = rows_per_task(t.n), r0 = int64_t(block) * rows;
  const int64_t m = std::min(rows, t.n - r0), width = t.strips * kStrip;
  std::vector<float> buf(size_t(m * (4 * u + width + 5 * u)));
  float *h = buf.data(), *c = h + m * u, *h_new = c + m * u, *c_new = h_new + m * u;
  float *z = c_new + m * u, *scratch = z + m * width;
  std::memcpy(h, t.h0 + r0 * u, sizeof(float) * size_t(m * u));
  std::memcpy(c, t.c0 + r0 * u, sizeof(float) * size_t(m * u));
  for (int64_t step = 0; step < t.steps; ++step) {
    const int64_t s = t.reverse ? t.steps - 1 - step : step;
    const int64_t at = s * t.n + r0;  // the first row's index in a (T, n, ...) tensor
    copy_rows(h, t.h_hist ? t.h_hist + at * u : nullptr, m * u);
    copy_rows(c, t.c_hist ? t.c_hist + at * u : nullptr, m * u);
    product_rows(h, u, m, u, t.packed, t.strips, z);
    if (t.bias != nullptr)
      for (int64_t r = 0; r < m; ++r) add_to(z + r * width, t.bias, 4 * u);
    for (int64_t r = 0; r < m; ++r)
      lstm_row(t.x + (at + r) * 4 * u, z + r * width, c + r * u, h_new + r * u, c_new + r * u,
               t.saved ? t.saved + (at + r) * 5 * u : scratch, u);
    copy_rows(h_new, t.hs ? t.hs + at * u : nullptr, m * u);
    copy_rows(c_new, t.cs ? t.cs + at * u : nullptr, m * u);
    std::swap(h, h_new);
    std::swap(c, c_new);
  }
  copy_rows(h, t.h_last ? t.h_last + r0 * u : nullptr, m * u);
  copy_rows(c, t.c_last ? t.c_last + r0 * u : nullptr, m * u);
}

// every step of rows [r0, r0 + m) of the reverse (gradient) recurrence
void sequence_grad_rows(void* data, size_t block) {
  const auto& t = *static_cast<const SequenceTask*>(data);
  const int64_t u = t.u, rows = rows_per_task(t.n), r0 = int64_t(block) * rows;
  const int64_t m = std::min(rows, t.n - r0), width = t.strips * kStrip;
  std::vector<float> buf(size_t(m * (4 * u + width)));
  float *dh = buf.data(), *dc = dh + m * u, *dc_new = dc + m * u, *dh_in = dc_new + m * u;
  float* dh_wide = dh_in + m * u;
  float* dbias = t.dbias ? t.dbias + int64_t(block) * 4 * u : nullptr;
  if (dbias != nullptr) std::fill(dbias, dbias + 4 * u, 0.0f);
  std::memcpy(dh, t.h0 + r0 * u, sizeof(float) * size_t(m * u));
  std::memcpy(dc, t.c0 + r0 * u, sizeof(float) * size_t(m * u));
  for (int64_t step = 0; step < t.steps; ++step) {
    const int64_t s = t.reverse ? t.steps - 1 - step : step;
    const int64_t at = s * t.n + r0;
    const float* dh_step = dh;
    if (t.dy != nullptr) {
      const float* dy = t.dy + at * u;
      for (int64_t k = 0; k < m * u; ++k) dh_in[k] = dh[k] + dy[k];
      dh_step = dh_in;
    }
    float* dz = t.dz + at * 4 * u;
    for (int64_t r = 0; r < m; ++r)
      lstm_grad_row(dh_step + r * u, dc + r * u, t.saved_in + (at + r) * 5 * u,
                    t.c_prev + (at + r) * u, dz + r * 4 * u, dc_new + r * u, u);
    if (dbias != nullptr)
      for (int64_t r = 0; r < m; ++r) add_to(dbias, dz + r * 4 * u, 4 * u);
    product_rows(dz, 4 * u, m, 4 * u, t.packed, t.strips, dh_wide);
    for (int64_t r = 0; r < m; ++r)
      std::memcpy(dh + r * u, dh_wide + r * width, sizeof(float) * size_t(u));
    std::swap(dc, dc_new);
  }
  copy_rows(dh, t.h_last ? t.h_last + r0 * u : nullptr, m * u);
  copy_rows(dc, t.c_last ? t.c_last + r0 * u : nullptr, m * u);
}

// fn over the blocks of rows_per_task batch rows
void run_blocks(Ort::KernelContext& ctx, void (*fn)(void*, size_t), SequenceTask* task) {
  run_tasks(ctx, fn, row_blocks(task->n), task->steps * task->n * task->u, task);
}

// a sequence operator's direction: attr reverse, steps from the last
struct Direction {
  bool reverse;
  explicit Direction(const OrtKernelInfo* info)
      : reverse(Ort::ConstKernelInfo(info).GetAttribute<int64_t>("reverse") != 0) {}
};

struct LstmSequenceKernel : Direction {
  using Direction::Direction;

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto x = shape_of(ctx, 0), r = shape_of(ctx, 1);
    const auto h0 = shape_of(ctx, 2), c0 = shape_of(ctx, 3);
    if (x.size() != 3 || r.size() != 2 || x[2] != r[1] || r[1] != 4 * r[0] ||
        h0 != std::vector<int64_t>{x[1], r[0]} || c0 != h0)
      bad_shapes("LSTMSequence", "x (T, n, 4u), r (u, 4u), h0 and c0 (n, u) expected");
    const float* bias = optional_vector(ctx, 4, r[1], "LSTMSequence", "a bias (4u,) expected");
    const int64_t steps = x[0], n = x[1], u = r[0];
    std::vector<float> packed(size_t(u * strips_of(4 * u) * kStrip));
    pack_strips(ctx.GetInput(1).GetTensorData<float>(), u, 4 * u, packed.data());
    SequenceTask t{steps, n, u, strips_of(4 * u), reverse,
                   ctx.GetInput(0).GetTensorData<float>(), packed.data(),
                   ctx.GetInput(2).GetTensorData<float>(), ctx.GetInput(3).GetTensorData<float>(),
                   nullptr, nullptr, nullptr,
                   bias,
                   output_data(ctx, 0, {n, u}), output_data(ctx, 1, {n, u}),
                   output_data(ctx, 2, {steps, n, u}), output_data(ctx, 3, {steps, n, u}),
                   output_data(ctx, 4, {steps, n, 5 * u}), output_data(ctx, 5, {steps, n, u}),
                   output_data(ctx, 6, {steps, n, u}), nullptr, nullptr};
    if (n > 0) run_blocks(ctx, sequence_rows, &t);
  }
};

struct LstmSequenceGradKernel : Direction {
  using Direction::Direction;

  void Compute(OrtKernelContext* context) {
    Ort::KernelContext ctx(context);
    const auto saved = shape_of(ctx, 0), c_prev = shape_of(ctx, 1), rt = shape_of(ctx, 2);
    const auto dh = shape_of(ctx, 3), dc = shape_of(ctx, 4);
    const bool has_dy = has_input(ctx, 5);
    if (saved.size() != 3 || rt.size() != 2 || rt[0] != 4 * rt[1] || saved[2] != 5 * rt[1] ||
        c_prev != std::vector<int64_t>{saved[0], saved[1], rt[1]} ||
        dh != std::vector<int64_t>{saved[1], rt[1]} || dc != dh ||
        (has_dy && shape_of(ctx, 5) != c_prev))
      bad_shapes("LSTMSequenceGrad", "saved (T, n, 5u), c_prev (T, n, u), r_t (4u, u), dh_last "
                                     "and dc_last (n, u), dy (T, n, u) expected");
    const int64_t steps = saved[0], n = saved[1], u = rt[1];
    std::vector<float> packed(size_t(4 * u * strips_of(u) * kStrip));
    pack_strips(ctx.GetInput(2).GetTensorData<float>(), 4 * u, u, packed.data());
    float* dz = ctx.GetOutput(2, {steps, n, 4 * u}).GetTensorMutableData<float>();
    float* dbias = output_data(ctx, 3, {1, 1, 4 * u});
    std::vector<float> partial(dbias ? size_t(row_blocks(n) * 4 * u) : 0);
    SequenceTask t{steps, n, u, strips_of(u), reverse, nullptr, packed.data(),
                   ctx.GetInput(3).GetTensorData<float>(), ctx.GetInput(4).GetTensorData<float>(),
                   has_dy ? ctx.GetInput(5).GetTensorData<float>() : nullptr,
                   ctx.GetInput(0).GetTensorData<float>(), ctx.GetInput(1).GetTensorData<float>(),
                   nullptr, ctx.GetOutput(0, {n, u}).GetTensorMutableData<float>(),
                   ctx.GetOutput(1, {n, u}).GetTensorMutableData<float>(),
                   nullptr, nullptr, nullptr, nullptr, nullptr, dz,
                   dbias ? partial.data() : nullptr};
    if (n > 0) run_blocks(ctx, sequence_grad_rows, &t);
    if (dbias != nullptr) add_parts(dbias, partial.data(), row_blocks(n), 4 * u, 4 * u);
  }
};

FloatOp<LstmGatesKernel, 3, 3> lstm_gates_op("LSTMGates");
FloatOp<LstmGatesGradKernel, 4, 2> lstm_gates_grad_op("LSTMGatesGrad");
FloatOp<LstmSequenceKernel, 5, 7, 4, 0> lstm_sequence_op("LSTMSequence");
FloatOp<LstmSequenceGradKernel, 6, 4, 5, 3> lstm_sequence_grad_op("LSTMSequenceGrad");

}  // namespace

void add_lstm_ops(Ort::CustomOpDomain& domain) {
  domain.Add(&lstm_gates_op);
  domain.Add(&lstm_gates_grad_op);
  domain.Add(&lstm_sequence_op);
  domain.Add(&lstm_sequence_grad_op);
}

}  // namespace kgops
