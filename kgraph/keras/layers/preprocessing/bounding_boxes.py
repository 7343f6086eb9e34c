"""`MaxNumBoundingBoxes` of Keras 3.15: pads (with `fill_value`) or cuts the bounding boxes and
their labels of `{"images", "bounding_boxes": {"boxes", "labels"}}` data to `max_number` per
image; images pass through. (kgraph's other image layers do not transform bounding boxes.)"""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.reshaping import standardize_data_format

__all__ = ["MaxNumBoundingBoxes"]


def _fit(x, count, fill_value):
    """`x` cut or padded along axis 1 to `count` entries."""
    x = x[:, :count]
    missing = count - x.shape[1]
    if missing <= 0:
        return x
    pads = [(0, 0), (0, missing)] + [(0, 0)] * (len(x.shape) - 2)
    return ops.pad(x, pads, constant_values=fill_value)


class MaxNumBoundingBoxes(Layer):
    """Gives every image exactly `max_number` bounding boxes.

    Args:
        max_number: int, boxes per image.
        fill_value: int, the boxes' coordinates and labels of padding (default -1).
        bounding_box_format: the boxes' format (e.g. `"xyxy"`); needed, as in Keras, when the
            data holds `"bounding_boxes"`.

    Example:
        >>> layer = MaxNumBoundingBoxes(3, bounding_box_format="xyxy")
        >>> layer({"images": images, "bounding_boxes": {"boxes": boxes, "labels": labels}})
    """

    def __init__(self, max_number, fill_value=-1, bounding_box_format=None, data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.max_number, self.fill_value = int(max_number), int(fill_value)
        self.bounding_box_format = bounding_box_format
        self.data_format = standardize_data_format(data_format)

    def call(self, data, training=True):
        if not isinstance(data, dict) or "bounding_boxes" not in data:
            return data
        if not self.bounding_box_format:
            raise ValueError(f"You passed an input with a 'bounding_boxes' key, but you didn't "
                             f"specify a bounding box format. Pass a `bounding_box_format` "
                             f"argument to your {type(self).__name__} layer, e.g. "
                             f"`bounding_box_format='xyxy'`.")
        boxes = dict(data["bounding_boxes"])
        extra = set(boxes) - {"boxes", "labels"}
        if extra:
            raise KeyError(f"There are unsupported keys in `bounding_boxes`: {sorted(extra)}. "
                           f"Only `boxes` and `labels` are supported.")
        boxes["boxes"] = _fit(boxes["boxes"], self.max_number, self.fill_value)
        boxes["labels"] = _fit(boxes["labels"], self.max_number, self.fill_value)
        return {**data, "bounding_boxes": boxes}

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {**super().get_config(), "data_format": self.data_format,
                  "max_number": self.max_number}
        if self.bounding_box_format:
            config["bounding_box_format"] = self.bounding_box_format
        return config
