"""kgraph's 2-D convolution operators (runtime/native/conv.cc: Conv2D, ConvTranspose2D,
Conv2DKernelGrad) against the numpy references of Conv / ConvTranspose in float64, directly
and as the emission of Keras convolution layers and their gradients."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from kgraph import keras
from kgraph.ops.conv import _conv_ref, _conv_transpose_ref
from kgraph.ops.conv_kernel_grad import _im2col_rows_ref
from kgraph.runtime import native_ops
from kgraph.runtime.onnx_exec import _session_options

pytestmark = pytest.mark.skipif(not native_ops.available(),
                                reason="kgraph's onnxruntime operators are not built")


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512f" in flags and "avx512vl" in flags


@pytest.fixture(autouse=True, params=["avx2", "avx512"])
def register_tile(request, monkeypatch):
    """Every test on each register tile (runtime/native/conv.cc: AVX2's 6 x 16, AVX-512's 12 x
    16); KGRAPH_AVX512=0 keeps a CPU with AVX-512 on AVX2's."""
    if request.param == "avx512" and not _has_avx512():
        pytest.skip("this CPU has no AVX-512 (F, VL): its tile cannot run here")
    monkeypatch.setenv("KGRAPH_AVX512", "1" if request.param == "avx512" else "0")

# (n, c, h, w, o, kh, kw, strides, dilations, pads (top, left, bottom, right)):
# tails of every tile (sites, channels, window offsets not multiples of 6 or 16), padding,
# strides, dilations, one channel, 1x1 windows, a window as large as the padded input, a
# batch split unevenly between the kernel gradient's tasks; then rows of 16 output sites or
# more at stride 1 along w with few products per output (Conv2D's row tile: its last tile in a
# row overlapping, channels past a multiple of 6, strides and dilations along h)
CASES = [(2, 3, 9, 7, 5, 3, 3, (1, 1), (1, 1), (0, 0, 0, 0)),
         (3, 32, 13, 13, 64, 3, 3, (1, 1), (1, 1), (0, 0, 0, 0)),
         (2, 1, 12, 10, 17, 3, 2, (2, 1), (1, 2), (1, 0, 2, 1)),
         (1, 20, 8, 8, 33, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0)),
         (2, 7, 11, 9, 6, 5, 3, (3, 2), (2, 1), (2, 1, 2, 1)),
         (1, 4, 3, 4, 3, 5, 6, (1, 1), (1, 1), (1, 1, 1, 1)),
         (11, 5, 6, 6, 7, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),  # more images than tasks
         (2, 3, 20, 37, 13, 3, 3, (2, 1), (1, 2), (1, 2, 0, 1)),
         (3, 1, 28, 28, 32, 3, 3, (1, 1), (1, 1), (0, 0, 0, 0)),
         (1, 2, 5, 18, 7, 2, 3, (1, 1), (1, 1), (0, 0, 0, 0)),
         # 3x3, stride 1, 32 channels or more in and out, 24 blocks of 2x2 outputs or more
         # per image and 256 in all: Winograd F(2x2, 3x3) forward (and, padded, for the
         # transposed convolution): odd output sizes, mixed pads, channels past a multiple of
         # 8 and 16, images split between two tasks
         (11, 32, 9, 10, 40, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),
         (8, 32, 11, 12, 33, 3, 3, (1, 1), (1, 1), (2, 1, 1, 2)),
         (4, 36, 16, 15, 32, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),
         # unpadded: the transposed convolution as Winograd's adjoint (blocks of its input)
         (8, 32, 13, 13, 64, 3, 3, (1, 1), (1, 1), (0, 0, 0, 0)),
         (9, 33, 12, 14, 40, 3, 3, (1, 1), (1, 1), (0, 0, 0, 0))]
ROW_TILE = CASES[7]


def _session(op, inputs, **attrs):
    info = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)  # noqa: E731
    node = helper.make_node(op, inputs, ["y"], domain="kgraph", **attrs)
    graph = helper.make_graph([node], op, [info(i) for i in inputs if i], [info("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("kgraph", 1)])
    return ort.InferenceSession(model.SerializeToString(), _session_options(native=True))


def _operands(case, seed=0):
    n, c, h, w, o, kh, kw, strides, dilations, pads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    k = rng.standard_normal((o, c, kh, kw)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    attrs = dict(strides=strides, dilations=dilations,
                 pads=((pads[0], pads[2]), (pads[1], pads[3])))
    return x, k, b, attrs, dict(strides=list(strides), dilations=list(dilations), pads=list(pads))


def _close(got, want):
    scale = np.sqrt(np.prod(want.shape[1:]) if want.ndim > 1 else 1) * max(1, np.abs(want).max())
    np.testing.assert_allclose(got, want, atol=1e-6 * scale, rtol=1e-5)


def _in_layout(k, layout):
    """An ONNX-layout kernel (a, b, kh, kw) as the operator reads it: Keras' (kh, kw, b, a)
    for kernel_layout 1."""
    return np.ascontiguousarray(k.transpose(2, 3, 1, 0)) if layout else k


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("relu,layout", [(0, 0), (1, 0), (1, 1)])
def test_conv2d_matches_the_reference(case, relu, layout):
    x, k, b, attrs, onnx_attrs = _operands(case)
    want = _conv_ref(x.astype(np.float64), k.astype(np.float64), b.astype(np.float64),
                     groups=1, **attrs)
    want = np.maximum(want, 0) if relu else want
    got = _session("Conv2D", ["x", "k", "b"], relu=relu, kernel_layout=layout,
                   **onnx_attrs).run(None, {"x": x, "k": _in_layout(k, layout), "b": b})[0]
    _close(got, want)
    no_bias = _session("Conv2D", ["x", "k"], relu=0, **onnx_attrs).run(None, {"x": x, "k": k})[0]
    _close(no_bias, _conv_ref(x.astype(np.float64), k.astype(np.float64), groups=1, **attrs))


@pytest.mark.parametrize("case", [CASES[0], ROW_TILE, CASES[10]])  # site, row tile, Winograd
def test_conv2d_relu_keeps_nan_as_onnxruntime_relu_does(case):
    x, k, b, _, onnx_attrs = _operands(case)
    x[0, 0, 0, 0] = np.nan  # reaches the first output site of every channel
    got = _session("Conv2D", ["x", "k", "b"], relu=1, **onnx_attrs).run(
        None, {"x": x, "k": k, "b": b})[0]
    assert np.isnan(got[0, :, 0, 0]).all() and not np.isnan(got[1]).any()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("output_padding,layout", [((0, 0), 0), ((1, 0), 0), ((1, 0), 1)])
def test_conv_transpose2d_matches_the_reference(case, output_padding, layout):
    x, k, b, attrs, onnx_attrs = _operands(case)
    if output_padding[0] >= attrs["strides"][0]:
        output_padding = (0, 0)
    # a transposed convolution of the forward output's shape with the kernel (c, o, kh, kw)
    y = _conv_ref(x, k, groups=1, **attrs)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    kt = np.ascontiguousarray(k)  # (o, c, ...) is the (in, out, ...) of the transposed conv
    bias = np.random.default_rng(2).standard_normal(k.shape[1]).astype(np.float32)
    want = _conv_transpose_ref(g.astype(np.float64), kt.astype(np.float64), bias.astype(np.float64),
                               output_padding=output_padding, groups=1, **attrs)
    got = _session("ConvTranspose2D", ["g", "k", "b"], output_padding=list(output_padding),
                   kernel_layout=layout, **onnx_attrs).run(
        None, {"g": g, "k": _in_layout(kt, layout), "b": bias})[0]
    _close(got, want)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", [0, 1])
def test_conv2d_kernel_grad_is_the_adjoint_of_conv(case, layout):
    x, k, _, attrs, onnx_attrs = _operands(case)
    y = _conv_ref(x, k, groups=1, **attrs)
    g = np.random.default_rng(1).standard_normal(y.shape)
    # d/dk sum(g * Conv(x, k)) = the windows of x (window offset, channel) times g's sites
    sizes = y.shape[2:]
    rows = _im2col_rows_ref(x.astype(np.float64), k.shape[2:], attrs["strides"],
                            attrs["dilations"], attrs["pads"], sizes)
    per_site = g.transpose(0, 2, 3, 1).reshape(-1, g.shape[1])  # (n * sites, o)
    want = (rows @ per_site).reshape(k.shape[2:] + k.shape[1:2] + k.shape[:1])
    want = want.transpose(3, 2, 0, 1)
    got = _session("Conv2DKernelGrad", ["x", "g"], kernel_shape=list(k.shape[2:]),
                   kernel_layout=layout, **onnx_attrs).run(
        None, {"x": x, "g": g.astype(np.float32)})[0]
    _close(got, _in_layout(want, layout))


WINOGRAD = CASES[10:]


@pytest.mark.parametrize("case", WINOGRAD)
@pytest.mark.parametrize("tile", ["2", "4"])
def test_each_winograd_tile_matches_the_reference(case, tile, monkeypatch):
    """KGRAPH_WINOGRAD=2 or 4 runs F(2x2, 3x3) or F(4x4, 3x3) wherever Winograd applies (the
    default picks per shape): all three operators, on every Winograd case, against the
    references above; and the Winograd sum is not the direct one bit for bit (it ran)."""
    monkeypatch.setenv("KGRAPH_WINOGRAD", tile)
    test_conv2d_matches_the_reference(case, 1, 1)
    test_conv_transpose2d_matches_the_reference(case, (0, 0), 1)
    test_conv2d_kernel_grad_is_the_adjoint_of_conv(case, 1)
    x, k, b, _, onnx_attrs = _operands(case)
    run = lambda: _session("Conv2D", ["x", "k", "b"], relu=0, **onnx_attrs).run(  # noqa: E731
        None, {"x": x, "k": k, "b": b})[0]
    winograd = run()
    monkeypatch.setenv("KGRAPH_WINOGRAD", "0")
    assert not np.array_equal(winograd, run())


def test_bad_shapes_and_attributes_are_named():
    x = np.zeros((1, 3, 5, 5), np.float32)
    with pytest.raises(Exception, match="Conv2D: x .n, c, h, w. and a kernel"):
        _session("Conv2D", ["x", "k"], relu=0, strides=[1, 1], dilations=[1, 1],
                 pads=[0, 0, 0, 0]).run(None, {"x": x, "k": np.zeros((2, 4, 3, 3), np.float32)})
    with pytest.raises(Exception, match="window no larger than the padded input"):
        _session("Conv2D", ["x", "k"], relu=0, strides=[1, 1], dilations=[1, 1],
                 pads=[0, 0, 0, 0]).run(None, {"x": x, "k": np.zeros((2, 3, 7, 1), np.float32)})
    with pytest.raises(Exception, match="bias"):
        _session("Conv2D", ["x", "k", "b"], relu=0, strides=[1, 1], dilations=[1, 1],
                 pads=[0, 0, 0, 0]).run(None, {"x": x, "k": np.zeros((2, 3, 3, 3), np.float32),
                                               "b": np.zeros(3, np.float32)})
    with pytest.raises(Exception, match="gradient of the convolution's output shape"):
        _session("Conv2DKernelGrad", ["x", "g"], kernel_shape=[3, 3], strides=[1, 1],
                 dilations=[1, 1], pads=[0, 0, 0, 0]).run(
            None, {"x": x, "g": np.zeros((1, 2, 4, 3), np.float32)})
    with pytest.raises(Exception, match="strides and dilations >= 1"):
        _session("Conv2D", ["x", "k"], relu=0, strides=[0, 1], dilations=[1, 1],
                 pads=[0, 0, 0, 0])


@pytest.mark.parametrize("channels,window,native", [(32, 3, True), (1, 3, True), (8, 1, False),
                                                    (128, 3, False)])
def test_which_convolutions_run_as_kgraph_operators(channels, window, native):
    """A small CNN's convolutions do; a 1x1 convolution (a plain GEMM) and one deeper than
    NATIVE_CONV_MAX_DEPTH (128 x 3 x 3 = 1152 products per output) keep onnxruntime's."""
    from kgraph.compiler.onnx.emit import emit
    from kgraph.compiler.passes import optimize

    model = keras.Sequential([keras.Input((6, 6, channels)),
                              keras.layers.Conv2D(4, window, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x = np.zeros((2, 6, 6, channels), np.float32)
    emitted = emit(optimize(model.trace_step("train", x, np.zeros((2, 1), np.float32))),
                   native=True)
    ops_ = emitted.op_types()
    mine = {"kgraph.Conv2D", "kgraph.Conv2DKernelGrad"}
    assert mine <= set(ops_) if native else not mine & set(ops_) and "Conv" in ops_
    assert ("Relu" not in ops_) == native  # joined into Conv2D (onnxruntime fuses its own)
    # kgraph's operators read and write the kernel in Keras' layout: no Transposes of it
    kernel = model.layers[0].kernel.path
    transposes = [n for n in emitted.nodes if n[0] == "Transpose" and
                  list(n[3]["perm"]) in ([3, 2, 0, 1], [2, 3, 1, 0])]
    assert (not transposes) == native, transposes
    if native:
        conv = next(n for n in emitted.nodes if n[0] == "kgraph.Conv2D")
        assert conv[1][1] == kernel and conv[3]["kernel_layout"] == 1


def test_a_pre_activation_read_elsewhere_keeps_its_relu_and_trains_the_same():
    """A model output that is a Conv2D's pre-activation (the loss reads it beside the ReLU):
    the Relu stays a node of its own, and the native step trains as the standard one."""
    from kgraph.compiler.onnx.emit import emit
    from kgraph.compiler.passes import optimize

    inputs = keras.Input((7, 7, 3))
    conv = keras.layers.Conv2D(5, 3)
    pre = conv(inputs)
    out = keras.layers.Flatten()(keras.layers.ReLU()(pre))
    model = keras.Model(inputs, [keras.layers.Dense(1)(out), pre])
    model.compile(keras.optimizers.SGD(0.01), ["mse", "mse"])  # (Adam's sign steps magnify
    rng = np.random.default_rng(0)                                   # rounding near zero)
    x = rng.standard_normal((4, 7, 7, 3)).astype(np.float32)
    ys = [rng.standard_normal((4, 1)).astype(np.float32),
          rng.standard_normal((4, 5, 5, 5)).astype(np.float32)]
    step = emit(optimize(model.trace_step("train", x, ys)), native=True).op_types()
    assert "kgraph.Conv2D" in step and "Relu" in step
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, ys, epochs=2, batch_size=2, verbose=0, shuffle=False)
    native = model.get_weights()
    model.set_weights(before)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KGRAPH_NATIVE_OPS", "0")
        model.compile(keras.optimizers.SGD(0.01), ["mse", "mse"])
        model.fit(x, ys, epochs=2, batch_size=2, verbose=0, shuffle=False)
    for a, b in zip(native, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_conv_output_read_only_inside_a_loop_body_is_left_alone():
    """A loop body reads outer values by name: a Conv2D whose one reader is a body's Relu
    keeps its output (and no top-level Relu is looked for)."""
    from kgraph.compiler.onnx.emit import Subgraph, _fuse_native

    body = Subgraph("body", [("Relu", ["y"], ["z"], {})], [], [])
    nodes = [("kgraph.Conv2D", ["x", "w"], ["y"], {"relu": 0}),
             ("Scan", ["s"], ["out"], {"body": body})]
    _fuse_native(nodes, {"out"})
    assert nodes[0] == ("kgraph.Conv2D", ["x", "w"], ["y"], {"relu": 0}) and len(nodes) == 2



# -- a 2x2 max pooling inside the convolutions (Conv2D pool=2, MaxUnpool, pooled gradients) --
# (n, c, h, w, o, pads): the row tile (one channel), the site tile (few channels, padded), and
# Winograd-sized layers with odd output sizes (windows cut at a block's edge, a last row and
# column no window covers), one padded
POOL_CASES = [(4, 1, 28, 28, 32, 0), (3, 5, 9, 11, 6, 1), (8, 32, 13, 13, 64, 0),
              (9, 33, 12, 14, 40, 0), (11, 32, 9, 10, 40, 1)]
UINT8 = {"i": TensorProto.UINT8}


def _pool_session(op, inputs, outputs, **attrs):
    info = lambda name: helper.make_tensor_value_info(  # noqa: E731
        name, UINT8.get(name, TensorProto.FLOAT), None)
    node = helper.make_node(op, inputs, outputs, domain="kgraph", **attrs)
    graph = helper.make_graph([node], op, [info(i) for i in inputs if i],
                              [info(o) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("kgraph", 1)])
    return ort.InferenceSession(model.SerializeToString(), _session_options(native=True))


def _pooled_conv(case, relu=1):
    """A case's conv output z (Conv2D alone), its pooling y and first-max offsets i (Conv2D
    pool=2), and the operands."""
    n, c, h, w, o, pad = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    x[0, :, :6, :6] = 0  # ties: whole windows of equal outputs
    k = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    attrs = dict(strides=[1, 1], dilations=[1, 1], pads=[pad] * 4)
    feeds = {"x": x, "k": k, "b": b}
    z = _pool_session("Conv2D", ["x", "k", "b"], ["z"], relu=relu, **attrs).run(None, feeds)[0]
    y, i = _pool_session("Conv2D", ["x", "k", "b"], ["y", "i"], relu=relu, pool=2,
                         **attrs).run(None, feeds)
    return z, y, i, feeds, attrs


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("tile", ["0", "2", "4"])
@pytest.mark.parametrize("relu", [0, 1])
def test_conv2d_pool_writes_the_max_of_each_window_and_its_first_offset(case, tile, relu,
                                                                        monkeypatch):
    monkeypatch.setenv("KGRAPH_WINOGRAD", tile)
    z, y, i, _, _ = _pooled_conv(case, relu)
    n, o, h, w = z.shape
    windows = z[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, o, h // 2, 2, w // 2, 2)
    windows = windows.transpose(0, 1, 2, 4, 3, 5).reshape(n, o, h // 2, w // 2, 4)
    assert i.dtype == np.uint8
    np.testing.assert_array_equal(y, windows.max(-1))
    np.testing.assert_array_equal(i, windows.argmax(-1))  # the first maximum, row-major


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("tile", ["0", "4"])
def test_pooled_gradients_are_the_unpooled_ones_bit_for_bit(case, tile, monkeypatch):
    """MaxUnpool routes as MaxPoolGrad does from the unpooled output; Conv2DKernelGrad and
    ConvTranspose2D given the pooled gradient and the offsets compute what they do from
    MaxUnpool's dense gradient."""
    monkeypatch.setenv("KGRAPH_WINOGRAD", tile)
    z, y, i, feeds, attrs = _pooled_conv(case)
    g = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    size = list(z.shape[2:])
    dense = _pool_session("MaxUnpool", ["g", "i"], ["d"], shape=size).run(None, {"g": g, "i": i})[0]
    routed = _pool_session("MaxPoolGrad", ["g", "z"], ["d"], kernel_shape=[2, 2],
                           strides=[2, 2], pads=[0] * 4, channels_last=0).run(
        None, {"g": g, "z": z})[0]
    np.testing.assert_array_equal(dense, routed)
    x, k = feeds["x"], feeds["k"]
    want = _pool_session("Conv2DKernelGrad", ["x", "g"], ["dw"], kernel_shape=[3, 3],
                         **attrs).run(None, {"x": x, "g": dense})[0]
    got = _pool_session("Conv2DKernelGrad", ["x", "g", "i"], ["dw"], kernel_shape=[3, 3],
                        pool=2, **attrs).run(None, {"x": x, "g": g, "i": i})[0]
    np.testing.assert_array_equal(got, want)
    bias = np.random.default_rng(5).standard_normal(x.shape[1]).astype(np.float32)
    want = _pool_session("ConvTranspose2D", ["g", "k", "b"], ["dx"], output_padding=[0, 0],
                         **attrs).run(None, {"g": dense, "k": k, "b": bias})[0]
    got = _pool_session("ConvTranspose2D", ["g", "k", "b", "i"], ["dx"], output_padding=[0, 0],
                        pool_shape=size, **attrs).run(None, {"g": g, "k": k, "b": bias, "i": i})[0]
    np.testing.assert_array_equal(got, want)


def test_bad_pooled_shapes_and_attributes_are_named():
    z, y, i, feeds, attrs = _pooled_conv(POOL_CASES[1])
    with pytest.raises(Exception, match="MaxUnpool: g .n, c, h / 2, w / 2. and window offsets"):
        _pool_session("MaxUnpool", ["g", "i"], ["d"], shape=[3, 3]).run(None, {"g": y, "i": i})
    with pytest.raises(Exception, match="Conv2DKernelGrad: a pooled gradient"):
        _pool_session("Conv2DKernelGrad", ["x", "g", "i"], ["dw"], kernel_shape=[3, 3], pool=2,
                      **attrs).run(None, {"x": feeds["x"], "g": y, "i": i[:, :, :1]})
    with pytest.raises(Exception, match="Conv2D: pool 0 or 2"):
        _pool_session("Conv2D", ["x", "k"], ["y", "i"], relu=0, pool=3, **attrs)


def _cnn(pool_readers=False):
    """Two conv-relu-pool blocks (the benchmark CNN's shape, smaller); with `pool_readers`
    the first block's conv output is also a model output (read beside the pooling)."""
    inputs = keras.Input((14, 14, 1))
    pre = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(pre)
    h = keras.layers.MaxPooling2D()(keras.layers.Conv2D(32, 3, activation="relu")(h))
    out = keras.layers.Dense(3)(keras.layers.Flatten()(h))
    model = keras.Model(inputs, [out, pre] if pool_readers else out)
    model.compile(keras.optimizers.SGD(0.01), ["mse", "mse"] if pool_readers else "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 14, 14, 1)).astype(np.float32)
    ys = [rng.standard_normal((64, 3)).astype(np.float32)]
    if pool_readers:
        ys.append(rng.standard_normal((64, 12, 12, 32)).astype(np.float32))
    return model, x, ys if pool_readers else ys[0]


def _train_step_outputs(model, x, y, fused, monkeypatch):
    from kgraph.compiler.onnx import emit as emission
    from kgraph.compiler.passes import optimize

    step = model.trace_step("train", x, y)
    if not fused:
        monkeypatch.setattr(emission, "_pool_in_convolutions", lambda *args: None)
    emitted = emission.emit(optimize(step), native=True)
    monkeypatch.undo()
    session = ort.InferenceSession(emitted.to_bytes(), _session_options(native=True))
    names = {v.node.attrs["name"] for v in step.inputs}
    feeds = {ph.node.attrs["name"]: np.asarray(var.numpy()) for var, ph in step.variables.items()}
    feeds.update(x_0=x, **({"y_0": y} if not isinstance(y, list) else
                           {f"y_{k}": v for k, v in enumerate(y)}))
    return emitted, session.run(None, {k: v for k, v in feeds.items() if k in names})


def test_conv_relu_pool_blocks_pool_inside_the_convolution_and_train_bit_for_bit(monkeypatch):
    """Emitted native, each conv-relu-2x2-pool block is one Conv2D (pool=2) whose pooled
    gradient the kernel gradients and the transposed convolution read with its offsets (no
    MaxPool, MaxPoolGrad, MaxUnpool or full-size gradient); the step's every output is the
    unfused one's."""
    model, x, y = _cnn()
    emitted, fused = _train_step_outputs(model, x, y, True, monkeypatch)
    ops_ = emitted.op_types()
    convs = [n for n in emitted.nodes if n[0] == "kgraph.Conv2D"]
    assert len(convs) == 2 and all(n[3].get("pool") == 2 and len(n[2]) == 2 for n in convs)
    assert not {"MaxPool", "kgraph.MaxPoolGrad", "kgraph.MaxUnpool"} & set(ops_)
    grads = [n for n in emitted.nodes if n[0] == "kgraph.Conv2DKernelGrad"]
    assert [n[3].get("pool") for n in grads] == [2, 2]
    transposed = next(n for n in emitted.nodes if n[0] == "kgraph.ConvTranspose2D")
    assert transposed[1][3] == convs[1][2][1] and transposed[3]["pool_shape"] == [4, 4]
    _, unfused = _train_step_outputs(model, x, y, False, monkeypatch)
    for a, b in zip(fused, unfused):
        np.testing.assert_array_equal(a, b)


def test_a_conv_output_read_beside_its_pooling_is_written_whole(monkeypatch):
    model, x, ys = _cnn(pool_readers=True)
    emitted, _ = _train_step_outputs(model, x, ys, True, monkeypatch)
    pools = [n[3].get("pool") for n in emitted.nodes if n[0] == "kgraph.Conv2D"]
    assert sorted(pools, key=str) == [2, None] and "MaxPool" in emitted.op_types()
