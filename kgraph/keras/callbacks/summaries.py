"""TensorBoard records built with tensorboard's own protos and event-file writer (no
TensorFlow needed): scalars, histograms, images and the layer graph."""
from __future__ import annotations

import os
import struct
import time
import zlib

import numpy as np

from kgraph.keras.utils.layer_graph import layer_nodes


def _tensorboard():
    """tensorboard's writer and protos, or an ImportError that says what to install."""
    try:
        from tensorboard.compat.proto import (event_pb2, graph_pb2, node_def_pb2,
                                              summary_pb2)
        from tensorboard.compat.proto import attr_value_pb2, tensor_shape_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as e:
        raise ImportError("keras.callbacks.TensorBoard writes event files with the "
                          "`tensorboard` package: `pip install 'kgraph[tensorboard]'` (or "
                          f"`pip install tensorboard`). ({e})") from e
    return dict(event=event_pb2, graph=graph_pb2, node=node_def_pb2, summary=summary_pb2,
                attr=attr_value_pb2, shape=tensor_shape_pb2, writer=EventFileWriter)


class EventWriter:
    """One run directory (`log_dir/train`, `log_dir/validation`) of event records."""

    def __init__(self, log_dir):
        self.pb = _tensorboard()
        os.makedirs(log_dir, exist_ok=True)
        self._writer = self.pb["writer"](log_dir)

    def _add(self, step, **fields):
        self._writer.add_event(self.pb["event"].Event(wall_time=time.time(), step=int(step),
                                                      **fields))

    def _summary(self, step, tag, **value):
        summary = self.pb["summary"].Summary(value=[self.pb["summary"].Summary.Value(
            tag=tag, **value)])
        self._add(step, summary=summary)

    def scalars(self, values: dict, step, prefix=""):
        """One `simple_value` per item of `values`, tagged `prefix + name`."""
        summary = self.pb["summary"]
        self._add(step, summary=summary.Summary(value=[
            summary.Summary.Value(tag=prefix + name, simple_value=float(value))
            for name, value in values.items()]))

    def histogram(self, tag, values, step, bins=30):
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if not values.size:
            return
        counts, edges = np.histogram(values, bins=bins)
        self._summary(step, tag, histo=self.pb["summary"].HistogramProto(
            min=float(values.min()), max=float(values.max()), num=float(values.size),
            sum=float(values.sum()), sum_squares=float(np.dot(values, values)),
            bucket_limit=[float(x) for x in edges[1:]], bucket=[float(c) for c in counts]))

    def image(self, tag, pixels, step):
        """A grayscale image from a 2-D uint8 array."""
        height, width = pixels.shape
        self._summary(step, tag, image=self.pb["summary"].Summary.Image(
            height=height, width=width, colorspace=1, encoded_image_string=png(pixels)))

    def graph(self, model):
        """The layer graph of `model` as a GraphDef (TensorBoard's graph tab)."""
        pb = self.pb
        nodes = []
        for node in layer_nodes(model):
            shapes = pb["attr"].AttrValue.ListValue(shape=[pb["shape"].TensorShapeProto(
                dim=[pb["shape"].TensorShapeProto.Dim(size=-1 if d is None else int(d))
                     for d in shape]) for shape in node.output_shapes])
            nodes.append(pb["node"].NodeDef(
                name=node.name, op=node.class_name, input=list(node.inputs),
                attr={"_output_shapes": pb["attr"].AttrValue(list=shapes),
                      "dtype": pb["attr"].AttrValue(s=node.dtype.encode())}))
        graph = pb["graph"].GraphDef(node=nodes)
        self._add(0, graph_def=graph.SerializeToString())

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()


def weight_image(weight) -> np.ndarray | None:
    """A weight as a 2-D uint8 picture (rows = the longer axis last, as Keras draws it), or
    None for shapes that do not make one."""
    w = np.squeeze(np.asarray(weight, dtype=np.float64))
    if w.ndim == 1:
        w = w[None, :]
    elif w.ndim == 2 and w.shape[0] > w.shape[1]:
        w = w.T
    elif w.ndim == 3:  # a conv kernel (kernel, in, out): one row of tiles per output
        w = w.reshape(w.shape[0], -1)
    if w.ndim != 2 or not w.size:
        return None
    low, high = w.min(), w.max()
    scaled = (w - low) / (high - low) if high > low else np.zeros_like(w)
    return np.round(scaled * 255).astype(np.uint8)


def png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a 2-D uint8 grayscale array."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
