"""keras.io example "Monocular Depth Estimation" (examples/vision/depth_estimation.py).

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow.keras import
layers`) with that import swapped for kgraph, as written: the `get_file("val.tar.gz",
cache_subdir=os.path.abspath("."), extract=True)` call, the `os.walk` file list split into
image/depth/mask columns, the `tf.keras.utils.Sequence` `DataGenerator` (its shrinking last
batch, `tf.image.convert_image_dtype`, the log-depth map clipped and masked with
`np.ma.masked_where`), the point-cloud slices, the U-Net layers (`DownscaleBlock` returning
`(x, p)`, `UpscaleBlock(x, skip)`, `BottleNeckBlock`, `x += d`), the subclassed
`DepthEstimationModel` whose `calculate_loss` adds the SSIM (`tf.image.ssim(max_val=WIDTH,
filter_size=7, k1=0.01 ** 2, k2=0.03 ** 2)`), L1 and edge-smoothness (`tf.image.image_gradients`,
Python `abs` of tensors) terms, taped `train_step`/`test_step`, `compile` with an unused loss,
fit on two generators and `predict` in `visualize_depth_map`.

Changes: the DIODE download is replaced by generated indoor scans (PNG images, depth and mask
`.npy` files) already extracted where the example reads them, next to a placeholder
`val.tar.gz` so `get_file` finds it; pandas' `DataFrame` (`sample`, row slices,
`reset_index`, columns by label) and OpenCV (`imread`, `cvtColor`, `resize`), not
dependencies, are small stand-ins; the plots are left out. Sizes: 256x256 -> 32x32,
BATCH_SIZE 32 -> 4, 30 epochs -> 1, 16 scans (the example's row cuts 260/265/300 -> 8/9/10).
Masks are all valid (the example's `np.log(depth_map, where=mask)` leaves masked pixels
uninitialized). Checked: the generator's shapes and ranges, the loss against a numpy
recomputation of its L1 and edge terms plus Keras' SSIM (real Keras), prediction shapes.
Marked slow (~4-6 s: train, test and predict programs of the U-Net).
"""
import os

import numpy as np
import pytest


class _Series:
    def __init__(self, values, index):
        self._by_label = dict(zip(index, values))

    def __getitem__(self, label):
        return self._by_label[label]


class _DataFrame:
    """The part of a pandas DataFrame the example uses."""

    def __init__(self, data, index=None):
        self._data = {k: list(v) for k, v in data.items()}
        n = len(next(iter(self._data.values())))
        self.index = _Index(range(n) if index is None else index)

    def __len__(self):
        return len(self.index)

    def __getitem__(self, key):
        if isinstance(key, slice):
            rows = list(range(len(self)))[key]
            return _DataFrame({k: [v[r] for r in rows] for k, v in self._data.items()},
                              [self.index[r] for r in rows])
        return _Series(self._data[key], self.index)

    def sample(self, frac, random_state):
        order = np.random.RandomState(random_state).permutation(len(self))[
            :int(round(frac * len(self)))]
        return _DataFrame({k: [v[r] for r in order] for k, v in self._data.items()},
                          [self.index[r] for r in order])

    def reset_index(self, drop):
        assert drop
        return _DataFrame(self._data)


class _Index(list):
    def tolist(self):
        return list(self)


class _cv2:  # OpenCV's imread / cvtColor / resize
    COLOR_BGR2RGB = 4

    @staticmethod
    def imread(path):
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))[:, :, ::-1].copy()

    @staticmethod
    def cvtColor(image, code):
        assert code == _cv2.COLOR_BGR2RGB
        return image[:, :, ::-1].copy()

    @staticmethod
    def resize(image, dim):  # dim is (width, height); masked arrays lose their mask
        from PIL import Image

        array = np.asarray(image)
        if array.ndim == 2:
            return np.asarray(Image.fromarray(array.astype("float32"), "F").resize(
                dim, Image.BILINEAR))
        return np.asarray(Image.fromarray(array).resize(dim, Image.BILINEAR))


def _diode(root, n=16, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = os.path.join(root, "val", "indoors", f"scene_{i // 4:05d}", "scan_00001")
        os.makedirs(folder, exist_ok=True)
        name = os.path.join(folder, f"{i:05d}_indoors_000_010")
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(name + ".png")
        np.save(name + "_depth.npy", rng.uniform(0.5, 20.0, (24, 32, 1)).astype("float32"))
        # every pixel valid: `np.log(depth_map, where=mask)` leaves masked pixels
        # uninitialized (then resized with the rest), which would make the test random
        np.save(name + "_depth_mask.npy", np.ones((24, 32), "float32"))
    with open(os.path.join(root, "val.tar.gz"), "wb") as f:  # downloaded and extracted
        f.write(b"")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:'where' used without 'out':UserWarning")
def test_depth_estimation(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    _diode(str(tmp_path))
    import types

    import kgraph as tf
    from kgraph.keras import layers

    pd = types.SimpleNamespace(DataFrame=_DataFrame)
    cv2 = _cv2

    tf.random.set_seed(123)

    annotation_folder = "/dataset/"
    if not os.path.exists(os.path.abspath(".") + annotation_folder):
        annotation_zip = tf.keras.utils.get_file(
            "val.tar.gz",
            cache_subdir=os.path.abspath("."),
            origin="http://diode-dataset.s3.amazonaws.com/val.tar.gz",
            extract=True,
        )
    assert annotation_zip == os.path.join(os.path.abspath("."), "val")

    path = "val/indoors"

    filelist = []

    for root, dirs, files in os.walk(path):
        for file in files:
            filelist.append(os.path.join(root, file))

    filelist.sort()
    data = {
        "image": [x for x in filelist if x.endswith(".png")],
        "depth": [x for x in filelist if x.endswith("_depth.npy")],
        "mask": [x for x in filelist if x.endswith("_depth_mask.npy")],
    }
    df = pd.DataFrame(data)

    df = df.sample(frac=1, random_state=42)
    assert len(df) == 16

    HEIGHT = 32  # 256
    WIDTH = 32  # 256
    LR = 0.0002
    EPOCHS = 1  # 30
    BATCH_SIZE = 4  # 32

    class DataGenerator(tf.keras.utils.Sequence):
        def __init__(self, data, batch_size=6, dim=(768, 1024), n_channels=3, shuffle=True):
            self.data = data
            self.indices = self.data.index.tolist()
            self.dim = dim
            self.n_channels = n_channels
            self.batch_size = batch_size
            self.shuffle = shuffle
            self.min_depth = 0.1
            self.on_epoch_end()

        def __len__(self):
            return int(np.ceil(len(self.data) / self.batch_size))

        def __getitem__(self, index):
            if (index + 1) * self.batch_size > len(self.indices):
                self.batch_size = len(self.indices) - index * self.batch_size
            index = self.indices[index * self.batch_size : (index + 1) * self.batch_size]
            batch = [self.indices[k] for k in index]
            x, y = self.data_generation(batch)

            return x, y

        def on_epoch_end(self):
            self.index = np.arange(len(self.indices))
            if self.shuffle == True:  # noqa: E712 - as written
                np.random.shuffle(self.index)

        def load(self, image_path, depth_map, mask):
            image_ = cv2.imread(image_path)
            image_ = cv2.cvtColor(image_, cv2.COLOR_BGR2RGB)
            image_ = cv2.resize(image_, self.dim)
            image_ = tf.image.convert_image_dtype(image_, tf.float32)

            depth_map = np.load(depth_map).squeeze()

            mask = np.load(mask)
            mask = mask > 0

            max_depth = min(300, np.percentile(depth_map, 99))
            depth_map = np.clip(depth_map, self.min_depth, max_depth)
            depth_map = np.log(depth_map, where=mask)

            depth_map = np.ma.masked_where(~mask, depth_map)

            depth_map = np.clip(depth_map, 0.1, np.log(max_depth))
            depth_map = cv2.resize(depth_map, self.dim)
            depth_map = np.expand_dims(depth_map, axis=2)
            depth_map = tf.image.convert_image_dtype(depth_map, tf.float32)

            return image_, depth_map

        def data_generation(self, batch):
            x = np.empty((self.batch_size, *self.dim, self.n_channels))
            y = np.empty((self.batch_size, *self.dim, 1))

            for i, batch_id in enumerate(batch):
                x[i,], y[i,] = self.load(
                    self.data["image"][batch_id],
                    self.data["depth"][batch_id],
                    self.data["mask"][batch_id],
                )

            return x, y

    visualize_samples = next(
        iter(DataGenerator(data=df, batch_size=6, dim=(HEIGHT, WIDTH)))
    )
    x, y = visualize_samples
    assert x.shape == (6, 32, 32, 3) and y.shape == (6, 32, 32, 1)
    assert 0 <= x.min() and x.max() <= 1 and 0.1 <= y.min() and y.max() <= np.log(20.0)

    depth_vis = np.flipud(visualize_samples[1][1].squeeze())  # target
    img_vis = np.flipud(visualize_samples[0][1].squeeze())  # input
    assert depth_vis.shape == (32, 32) and img_vis.shape == (32, 32, 3)

    class DownscaleBlock(layers.Layer):
        def __init__(self, filters, kernel_size=(3, 3), padding="same", strides=1):
            super().__init__()
            self.convA = layers.Conv2D(filters, kernel_size, strides, padding)
            self.convB = layers.Conv2D(filters, kernel_size, strides, padding)
            self.reluA = layers.LeakyReLU(alpha=0.2)
            self.reluB = layers.LeakyReLU(alpha=0.2)
            self.bn2a = tf.keras.layers.BatchNormalization()
            self.bn2b = tf.keras.layers.BatchNormalization()

            self.pool = layers.MaxPool2D((2, 2), (2, 2))

        def call(self, input_tensor):
            d = self.convA(input_tensor)
            x = self.bn2a(d)
            x = self.reluA(x)

            x = self.convB(x)
            x = self.bn2b(x)
            x = self.reluB(x)

            x += d
            p = self.pool(x)
            return x, p

    class UpscaleBlock(layers.Layer):
        def __init__(self, filters, kernel_size=(3, 3), padding="same", strides=1):
            super().__init__()
            self.us = layers.UpSampling2D((2, 2))
            self.convA = layers.Conv2D(filters, kernel_size, strides, padding)
            self.convB = layers.Conv2D(filters, kernel_size, strides, padding)
            self.reluA = layers.LeakyReLU(alpha=0.2)
            self.reluB = layers.LeakyReLU(alpha=0.2)
            self.bn2a = tf.keras.layers.BatchNormalization()
            self.bn2b = tf.keras.layers.BatchNormalization()
            self.conc = layers.Concatenate()

        def call(self, x, skip):
            x = self.us(x)
            concat = self.conc([x, skip])
            x = self.convA(concat)
            x = self.bn2a(x)
            x = self.reluA(x)

            x = self.convB(x)
            x = self.bn2b(x)
            x = self.reluB(x)

            return x

    class BottleNeckBlock(layers.Layer):
        def __init__(self, filters, kernel_size=(3, 3), padding="same", strides=1):
            super().__init__()
            self.convA = layers.Conv2D(filters, kernel_size, strides, padding)
            self.convB = layers.Conv2D(filters, kernel_size, strides, padding)
            self.reluA = layers.LeakyReLU(alpha=0.2)
            self.reluB = layers.LeakyReLU(alpha=0.2)

        def call(self, x):
            x = self.convA(x)
            x = self.reluA(x)
            x = self.convB(x)
            x = self.reluB(x)
            return x

    class DepthEstimationModel(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.ssim_loss_weight = 0.85
            self.l1_loss_weight = 0.1
            self.edge_loss_weight = 0.9
            self.loss_metric = tf.keras.metrics.Mean(name="loss")
            f = [16, 32, 64, 128, 256]
            self.downscale_blocks = [
                DownscaleBlock(f[0]),
                DownscaleBlock(f[1]),
                DownscaleBlock(f[2]),
                DownscaleBlock(f[3]),
            ]
            self.bottle_neck_block = BottleNeckBlock(f[4])
            self.upscale_blocks = [
                UpscaleBlock(f[3]),
                UpscaleBlock(f[2]),
                UpscaleBlock(f[1]),
                UpscaleBlock(f[0]),
            ]
            self.conv_layer = layers.Conv2D(1, (1, 1), padding="same", activation="tanh")

        def calculate_loss(self, target, pred):
            dy_true, dx_true = tf.image.image_gradients(target)
            dy_pred, dx_pred = tf.image.image_gradients(pred)
            weights_x = tf.exp(tf.reduce_mean(tf.abs(dx_true)))
            weights_y = tf.exp(tf.reduce_mean(tf.abs(dy_true)))

            smoothness_x = dx_pred * weights_x
            smoothness_y = dy_pred * weights_y

            l_edges = tf.reduce_mean(abs(smoothness_x)) + tf.reduce_mean(abs(smoothness_y))

            l_ssim = tf.reduce_mean(
                1
                - tf.image.ssim(
                    target, pred, max_val=WIDTH, filter_size=7, k1=0.01 ** 2, k2=0.03 ** 2
                )
            )
            l1_loss = tf.reduce_mean(tf.abs(target - pred))

            loss = (
                (self.ssim_loss_weight * l_ssim)
                + (self.l1_loss_weight * l1_loss)
                + (self.edge_loss_weight * l_edges)
            )

            return loss

        @property
        def metrics(self):
            return [self.loss_metric]

        def train_step(self, batch_data):
            input, target = batch_data
            with tf.GradientTape() as tape:
                pred = self(input, training=True)
                loss = self.calculate_loss(target, pred)

            gradients = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
            self.loss_metric.update_state(loss)
            return {
                "loss": self.loss_metric.result(),
            }

        def test_step(self, batch_data):
            input, target = batch_data

            pred = self(input, training=False)
            loss = self.calculate_loss(target, pred)

            self.loss_metric.update_state(loss)
            return {
                "loss": self.loss_metric.result(),
            }

        def call(self, x):
            c1, p1 = self.downscale_blocks[0](x)
            c2, p2 = self.downscale_blocks[1](p1)
            c3, p3 = self.downscale_blocks[2](p2)
            c4, p4 = self.downscale_blocks[3](p3)

            bn = self.bottle_neck_block(p4)

            u1 = self.upscale_blocks[0](bn, c4)
            u2 = self.upscale_blocks[1](u1, c3)
            u3 = self.upscale_blocks[2](u2, c2)
            u4 = self.upscale_blocks[3](u3, c1)

            return self.conv_layer(u4)

    optimizer = tf.keras.optimizers.Adam(
        learning_rate=LR,
        amsgrad=False,
    )
    dem = DepthEstimationModel()
    cross_entropy = tf.keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="none"
    )
    dem.compile(optimizer, loss=cross_entropy)

    train_loader = DataGenerator(
        data=df[:8].reset_index(drop="true"), batch_size=BATCH_SIZE, dim=(HEIGHT, WIDTH)
    )
    validation_loader = DataGenerator(
        data=df[8:].reset_index(drop="true"), batch_size=BATCH_SIZE, dim=(HEIGHT, WIDTH)
    )
    history = dem.fit(
        train_loader,
        epochs=EPOCHS,
        validation_data=validation_loader,
    )
    assert set(history.history) == {"loss", "val_loss"}

    def visualize_depth_map(samples, test=False, model=None):
        input, target = samples
        if test:
            pred = model.predict(input)
            assert pred.shape == target.shape and np.abs(pred).max() <= 1.0  # tanh
            return pred
        return None

    test_loader = next(
        iter(
            DataGenerator(
                data=df[9:].reset_index(drop="true"), batch_size=6, dim=(HEIGHT, WIDTH)
            )
        )
    )
    pred = visualize_depth_map(test_loader, test=True, model=dem)

    test_loader = next(
        iter(
            DataGenerator(
                data=df[10:].reset_index(drop="true"), batch_size=6, dim=(HEIGHT, WIDTH)
            )
        )
    )
    assert test_loader[0].shape[0] == 6
    visualize_depth_map(test_loader, test=True, model=dem)

    # the loss, recomputed: its L1 and edge terms in numpy, SSIM from real Keras
    real_keras = pytest.importorskip("keras")
    target, pred = np.asarray(test_loader[1], "float32"), dem.predict(test_loader[0],
                                                                       verbose=0)
    got = float(dem.calculate_loss(target, pred))

    def grads(a):
        dy = np.zeros_like(a)
        dx = np.zeros_like(a)
        dy[:, :-1] = a[:, 1:] - a[:, :-1]
        dx[:, :, :-1] = a[:, :, 1:] - a[:, :, :-1]
        return dy, dx

    dy_t, dx_t = grads(target)
    dy_p, dx_p = grads(pred)
    edges = (np.abs(dx_p * np.exp(np.abs(dx_t).mean())).mean()
             + np.abs(dy_p * np.exp(np.abs(dy_t).mean())).mean())
    ssim = np.asarray(real_keras.ops.image.ssim(target, pred, max_val=WIDTH, filter_size=7,
                                                k1=0.01 ** 2, k2=0.03 ** 2))
    want = 0.85 * np.mean(1 - ssim) + 0.1 * np.abs(target - pred).mean() + 0.9 * edges
    np.testing.assert_allclose(got, want, rtol=1e-4)
