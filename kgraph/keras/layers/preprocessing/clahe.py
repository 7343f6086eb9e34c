"""`ContrastLimitedAdaptiveHistogramEqualization` of Keras 3.15 inside the graph, Keras'
algorithm step by step: the image (0-255 scale) padded symmetrically to whole tiles, a
256-bin histogram per tile and channel, clipped at `clip_limit * tile pixels / 256` with the
excess spread evenly, normalised CDFs, edge-padded by one tile, and each pixel's value mapped
through the four nearest tiles' CDFs, bilinearly weighted. Applies in training and inference
(as Keras). Spatial sizes must be known while tracing."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras.layers.preprocessing.affine import _batch_offsets
from kgraph.keras.layers.preprocessing.color import ImageLayer, rescale

__all__ = ["ContrastLimitedAdaptiveHistogramEqualization"]


def _tile_axis(tiles, tile):
    """Static (lower tile, upper tile, weight) per padded pixel along one axis."""
    grid = (np.arange(tiles * tile, dtype=np.float32) - tile / 2.0) / tile + 1.0
    low = np.floor(grid)
    weight = (grid - low).astype(np.float32)
    return (np.clip(low, 0, tiles + 1).astype(np.int64),
            np.clip(low + 1, 0, tiles + 1).astype(np.int64), weight)


class ContrastLimitedAdaptiveHistogramEqualization(ImageLayer):
    """Contrast-limited adaptive histogram equalization (CLAHE) per channel.

    Args:
        value_range: the range of the pixel values (default `(0, 255)`).
        clip_limit: float, the histogram clip relative to a flat histogram (default 4.0;
            0 turns clipping off).
        tile_grid_size: `(rows, columns)` of tiles (default `(8, 8)`).
    """

    applies_in_inference, has_seed = True, False

    def __init__(self, value_range=(0, 255), clip_limit=4.0, tile_grid_size=(8, 8),
                 data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.value_range, self.clip_limit = value_range, clip_limit
        self.tile_grid_size = tile_grid_size

    def transform(self, x, params=None):
        first = self.data_format == "channels_first"
        images = ops.transpose(x, (0, 2, 3, 1)) if first else x
        out = rescale(self._clahe(rescale(images, self.value_range, (0, 255))), (0, 255),
                      self.value_range)
        return ops.transpose(out, (0, 3, 1, 2)) if first else out

    def _clahe(self, images):
        _, height, width, channels = images.shape
        grid_h, grid_w = self.tile_grid_size
        tile_h, tile_w = -(-height // grid_h), -(-width // grid_w)
        pad_h, pad_w = tile_h * grid_h - height, tile_w * grid_w - width
        if pad_h or pad_w:
            images = ops.pad(images, [(0, 0), (0, pad_h), (0, pad_w), (0, 0)],
                             mode="symmetric")
        tiled = ops.reshape(images, (-1, grid_h, tile_h, grid_w, tile_w, channels))
        tiled = ops.reshape(ops.transpose(tiled, (0, 1, 3, 5, 2, 4)),
                            (-1, grid_h, grid_w, channels, tile_h * tile_w))
        levels = ops.clip(ops.cast(tiled, "int32"), 0, 255)
        hists = ops.sum(ops.one_hot(levels, 256), axis=-2)
        if self.clip_limit > 0:
            clipped = ops.clip(hists, 0.0, float(self.clip_limit * (tile_h * tile_w) / 256.0))
            hists = clipped + ops.sum(hists - clipped, axis=-1, keepdims=True) / 256.0
        cdf = ops.cumsum(hists, axis=-1)
        cdf_min = ops.min(cdf, axis=-1, keepdims=True)
        denominator = float(tile_h * tile_w) - cdf_min
        denominator = ops.where(ops.equal(denominator, 0.0), ops.ones_like(denominator),
                                denominator)
        cdf = ops.clip((cdf - cdf_min) * 255.0 / denominator, 0.0, 255.0)
        cdf = ops.concatenate([cdf[:, :1], cdf, cdf[:, -1:]], axis=1)
        cdf = ops.concatenate([cdf[:, :, :1], cdf, cdf[:, :, -1:]], axis=2)
        return self._interpolate(cdf, images, (grid_h, grid_w, tile_h, tile_w))[
            :, :height, :width, :]

    def _interpolate(self, cdf, images, grid):
        grid_h, grid_w, tile_h, tile_w = grid
        channels = images.shape[-1]
        y0, y1, wy = _tile_axis(grid_h, tile_h)
        x0, x1, wx = _tile_axis(grid_w, tile_w)
        stride_x = 256 * channels
        stride_y = stride_x * (grid_w + 2)
        stride_b = stride_y * (grid_h + 2)
        rows = ops.cast(_batch_offsets(images, 1), "int64")  # (batch, 1): exact indices
        base = ops.reshape(rows, (-1, 1, 1, 1)) * stride_b + \
            np.arange(channels, dtype=np.int64)[None, None, None, :] * 256 + \
            ops.cast(ops.clip(images, 0.0, 255.0), "int64")
        flat = ops.reshape(cdf, (-1,))

        def at(ys, xs):
            offset = ys[None, :, None, None] * stride_y + xs[None, None, :, None] * stride_x
            return ops.take(flat, base + offset)

        wy, wx = wy[None, :, None, None], wx[None, None, :, None]
        top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx
        bottom = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx
        return top * (1.0 - wy) + bottom * wy

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "clip_limit": self.clip_limit, "tile_grid_size": self.tile_grid_size}
