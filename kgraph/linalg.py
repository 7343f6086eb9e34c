"""`tf.linalg`: the matrix functions of kgraph/tf_names.py under the module path TensorFlow code
reaches them by (`tf.linalg.matmul(a, b, transpose_b=True)`, `tf.linalg.einsum`; the keras.io
semantic-image-clustering example). Each is the `keras.ops` function of the same meaning, with
TensorFlow's argument names and defaults."""
from kgraph.keras import ops
from kgraph.tf_names import eager_tensors, einsum, eye, matmul, norm  # noqa: F401

__all__ = ["einsum", "eye", "matmul", "norm", "set_diag"]


@eager_tensors
def set_diag(input, diagonal, name=None, k=0, align="RIGHT_LEFT"):  # noqa: A002
    """tf.linalg.set_diag: `input` with the main diagonal of its innermost matrices replaced
    by `diagonal` (shape `input.shape[:-2] + (min(M, N),)`; the keras.io WGAN-graphs example
    removes self-loops with zeros). Only the main diagonal (`k=0`)."""
    if k != 0:
        raise NotImplementedError(f"tf.linalg.set_diag: only k=0 is supported. Received: k={k}")
    rows, cols = ops.shape(input)[-2:]
    mask = ops.eye(rows, cols, dtype=input.dtype)
    # the diagonal runs along the shorter side: d[i] sits at (i, i)
    spread = diagonal[..., :, None] if rows <= cols else diagonal[..., None, :]
    return input * (1 - mask) + ops.cast(spread, input.dtype) * mask
