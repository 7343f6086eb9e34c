"""keras.io example "3D volumetric rendering with NeRF" (examples/vision/nerf.py).

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras import layers`) with those imports swapped for kgraph, as written: the
`tiny_nerf_data.npz` read through `keras.utils.get_file` (images, poses, focal), the Fourier
`encode_position` (`tf.sin`/`tf.cos` concatenated), `get_rays` (`tf.meshgrid` of `tf.range`s,
camera rotation by broadcasting, `tf.broadcast_to(origin, tf.shape(directions))`),
`render_flat_rays` (`tf.linspace`, `tf.random.uniform` jitter, positions encoded), the pose
datasets mapped to rays and zipped with the images, the residual MLP, `render_rgb_depth`
(`tf.sigmoid`, `tf.nn.relu`, `tf.broadcast_to([1e10], ...)`, `tf.math.cumprod(exclusive=True)`
transmittance, weighted sums; `model(...)` in the step, `model.predict` for inference), the
`NeRF` model with its own `compile(optimizer, loss_fn)`, a taped `train_step` and `test_step`
reporting `tf.image.psnr`, the `TrainMonitor` callback rendering a batch with `predict` (its
`array_to_img` calls kept, the figure left out), fit with validation and `steps_per_epoch`,
and the 360-degree render loop (`pose_spherical` from `tf.convert_to_tensor` of lists holding
`tf.cos`/`tf.sin` tensors, `@` products, batches of `tf.stack`ed rays rendered with
`rand=False`).

Changes: the tiny NeRF download is replaced by a generated `.npz` of its layout (10 random
8x8 images, random rotation poses with a camera offset, focal 10) placed in `get_file`'s
cache; the GIF/MP4 writing (`imageio`) and plots are left out. Sizes: 100x100 -> 8x8 images,
NUM_SAMPLES 32 -> 4, POS_ENCODE_DIMS 16 -> 4, BATCH_SIZE 5 -> 2, 20 epochs -> 1, the render
loop's 120 views -> 5. Checked: `get_rays` and the exclusive cumulative product against
numpy, shapes of rays and renders, the depth inside [near, far] where the weights sum to one,
loss/psnr logs, uint8 frames.
"""
import numpy as np
import pytest


def _tiny_nerf_npz(path, n=10, size=8, seed=0):
    rng = np.random.default_rng(seed)
    poses = np.zeros((n, 4, 4), "float32")
    for i in range(n):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        poses[i, :3, :3] = q
        poses[i, :3, 3] = rng.normal(size=3) * 4.0
        poses[i, 3, 3] = 1.0
    np.savez(path, images=rng.random((n, size, size, 3)).astype("float32"), poses=poses,
             focal=np.float64(10.0))


def test_nerf(tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KGRAPH_HOME", str(tmp_path / "home"))
    os.makedirs(tmp_path / "home" / "datasets")
    _tiny_nerf_npz(tmp_path / "home" / "datasets" / "tiny_nerf_data.npz")

    import kgraph as tf

    tf.random.set_seed(42)

    from kgraph import keras
    from kgraph.keras import layers

    AUTO = tf.data.AUTOTUNE
    BATCH_SIZE = 2  # 5
    NUM_SAMPLES = 4  # 32
    POS_ENCODE_DIMS = 4  # 16
    EPOCHS = 1  # 20

    file_name = "tiny_nerf_data.npz"
    url = "https://people.eecs.berkeley.edu/~bmild/nerf/tiny_nerf_data.npz"
    if not os.path.exists(file_name):
        data = keras.utils.get_file(fname=file_name, origin=url)

    data = np.load(data)
    images = data["images"]
    im_shape = images.shape
    num_images = im_shape[0]
    H = im_shape[1]
    W = im_shape[2]
    poses = data["poses"]
    focal = data["focal"]

    rand_index = np.random.randint(low=0, high=num_images)
    test_image = images[rand_index]
    assert test_image.shape == (8, 8, 3)

    def encode_position(x):
        positions = [x]
        for i in range(POS_ENCODE_DIMS):
            for fn in [tf.sin, tf.cos]:
                positions.append(fn(2.0 ** i * x))
        return tf.concat(positions, axis=-1)

    def get_rays(height, width, focal, pose):
        i, j = tf.meshgrid(
            tf.range(width, dtype=tf.float32),
            tf.range(height, dtype=tf.float32),
            indexing="xy",
        )

        transformed_i = (i - width * 0.5) / focal

        transformed_j = (j - height * 0.5) / focal

        directions = tf.stack([transformed_i, -transformed_j, -tf.ones_like(i)], axis=-1)

        camera_matrix = pose[:3, :3]
        height_width_focal = pose[:3, -1]

        transformed_dirs = directions[..., None, :]
        camera_dirs = transformed_dirs * camera_matrix
        ray_directions = tf.reduce_sum(camera_dirs, axis=-1)
        ray_origins = tf.broadcast_to(height_width_focal, tf.shape(ray_directions))

        return (ray_origins, ray_directions)

    origins, directions = get_rays(H, W, focal, poses[0])
    cols, rows = np.meshgrid(np.arange(W), np.arange(H))
    local = np.stack([(cols - W / 2) / focal, -(rows - H / 2) / focal, -np.ones((H, W))], -1)
    np.testing.assert_allclose(directions, local @ poses[0, :3, :3].T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(origins, np.broadcast_to(poses[0, :3, 3], (H, W, 3)))

    def render_flat_rays(ray_origins, ray_directions, near, far, num_samples, rand=False):
        t_vals = tf.linspace(near, far, num_samples)
        if rand:
            shape = list(ray_origins.shape[:-1]) + [num_samples]
            noise = tf.random.uniform(shape=shape) * (far - near) / num_samples
            t_vals = t_vals + noise

        rays = ray_origins[..., None, :] + (
            ray_directions[..., None, :] * t_vals[..., None]
        )
        rays_flat = tf.reshape(rays, [-1, 3])
        rays_flat = encode_position(rays_flat)
        return (rays_flat, t_vals)

    def map_fn(pose):
        (ray_origins, ray_directions) = get_rays(height=H, width=W, focal=focal, pose=pose)
        (rays_flat, t_vals) = render_flat_rays(
            ray_origins=ray_origins,
            ray_directions=ray_directions,
            near=2.0,
            far=6.0,
            num_samples=NUM_SAMPLES,
            rand=True,
        )
        return (rays_flat, t_vals)

    split_index = int(num_images * 0.8)

    train_images = images[:split_index]
    val_images = images[split_index:]

    train_poses = poses[:split_index]
    val_poses = poses[split_index:]

    train_img_ds = tf.data.Dataset.from_tensor_slices(train_images)
    train_pose_ds = tf.data.Dataset.from_tensor_slices(train_poses)
    train_ray_ds = train_pose_ds.map(map_fn, num_parallel_calls=AUTO)
    training_ds = tf.data.Dataset.zip((train_img_ds, train_ray_ds))
    train_ds = (
        training_ds.shuffle(BATCH_SIZE)
        .batch(BATCH_SIZE, drop_remainder=True, num_parallel_calls=AUTO)
        .prefetch(AUTO)
    )

    val_img_ds = tf.data.Dataset.from_tensor_slices(val_images)
    val_pose_ds = tf.data.Dataset.from_tensor_slices(val_poses)
    val_ray_ds = val_pose_ds.map(map_fn, num_parallel_calls=AUTO)
    validation_ds = tf.data.Dataset.zip((val_img_ds, val_ray_ds))
    val_ds = (
        validation_ds.shuffle(BATCH_SIZE)
        .batch(BATCH_SIZE, drop_remainder=True, num_parallel_calls=AUTO)
        .prefetch(AUTO)
    )

    def get_nerf_model(num_layers, num_pos):
        inputs = keras.Input(shape=(num_pos, 2 * 3 * POS_ENCODE_DIMS + 3))
        x = inputs
        for i in range(num_layers):
            x = layers.Dense(units=64, activation="relu")(x)
            if i % 4 == 0 and i > 0:
                x = layers.concatenate([x, inputs], axis=-1)
        outputs = layers.Dense(units=4)(x)
        return keras.Model(inputs=inputs, outputs=outputs)

    def render_rgb_depth(model, rays_flat, t_vals, rand=True, train=True):
        if train:
            predictions = model(rays_flat)
        else:
            predictions = model.predict(rays_flat)
        predictions = tf.reshape(predictions, shape=(BATCH_SIZE, H, W, NUM_SAMPLES, 4))

        rgb = tf.sigmoid(predictions[..., :-1])
        sigma_a = tf.nn.relu(predictions[..., -1])

        delta = t_vals[..., 1:] - t_vals[..., :-1]
        if rand:
            delta = tf.concat(
                [delta, tf.broadcast_to([1e10], shape=(BATCH_SIZE, H, W, 1))], axis=-1
            )
            alpha = 1.0 - tf.exp(-sigma_a * delta)
        else:
            delta = tf.concat(
                [delta, tf.broadcast_to([1e10], shape=(BATCH_SIZE, 1))], axis=-1
            )
            alpha = 1.0 - tf.exp(-sigma_a * delta[:, None, None, :])

        exp_term = 1.0 - alpha
        epsilon = 1e-10
        transmittance = tf.math.cumprod(exp_term + epsilon, axis=-1, exclusive=True)
        weights = alpha * transmittance
        rgb = tf.reduce_sum(weights[..., None] * rgb, axis=-2)

        if rand:
            depth_map = tf.reduce_sum(weights * t_vals, axis=-1)
        else:
            depth_map = tf.reduce_sum(weights * t_vals[:, None, None], axis=-1)
        return (rgb, depth_map)

    class NeRF(keras.Model):
        def __init__(self, nerf_model):
            super().__init__()
            self.nerf_model = nerf_model

        def compile(self, optimizer, loss_fn):
            super().compile()
            self.optimizer = optimizer
            self.loss_fn = loss_fn
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.psnr_metric = keras.metrics.Mean(name="psnr")

        def train_step(self, inputs):
            (images, rays) = inputs
            (rays_flat, t_vals) = rays

            with tf.GradientTape() as tape:
                rgb, _ = render_rgb_depth(
                    model=self.nerf_model, rays_flat=rays_flat, t_vals=t_vals, rand=True
                )
                loss = self.loss_fn(images, rgb)

            trainable_variables = self.nerf_model.trainable_variables

            gradients = tape.gradient(loss, trainable_variables)

            self.optimizer.apply_gradients(zip(gradients, trainable_variables))

            psnr = tf.image.psnr(images, rgb, max_val=1.0)

            self.loss_tracker.update_state(loss)
            self.psnr_metric.update_state(psnr)
            return {"loss": self.loss_tracker.result(), "psnr": self.psnr_metric.result()}

        def test_step(self, inputs):
            (images, rays) = inputs
            (rays_flat, t_vals) = rays

            rgb, _ = render_rgb_depth(
                model=self.nerf_model, rays_flat=rays_flat, t_vals=t_vals, rand=True
            )
            loss = self.loss_fn(images, rgb)

            psnr = tf.image.psnr(images, rgb, max_val=1.0)

            self.loss_tracker.update_state(loss)
            self.psnr_metric.update_state(psnr)
            return {"loss": self.loss_tracker.result(), "psnr": self.psnr_metric.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.psnr_metric]

    test_imgs, test_rays = next(iter(train_ds))
    test_rays_flat, test_t_vals = test_rays
    assert tuple(test_rays_flat.shape) == (2, 8 * 8 * 4, 2 * 3 * 4 + 3)
    assert tuple(test_t_vals.shape) == (2, 8, 8, 4)

    loss_list = []
    rendered = []

    class TrainMonitor(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            loss = logs["loss"]
            loss_list.append(loss)
            test_recons_images, depth_maps = render_rgb_depth(
                model=self.model.nerf_model,
                rays_flat=test_rays_flat,
                t_vals=test_t_vals,
                rand=True,
                train=False,
            )
            keras.preprocessing.image.array_to_img(test_recons_images[0])
            keras.preprocessing.image.array_to_img(depth_maps[0, ..., None])
            rendered.append((np.asarray(test_recons_images), np.asarray(depth_maps)))

    num_pos = H * W * NUM_SAMPLES
    nerf_model = get_nerf_model(num_layers=8, num_pos=num_pos)

    model = NeRF(nerf_model)
    model.compile(
        optimizer=keras.optimizers.Adam(), loss_fn=keras.losses.MeanSquaredError()
    )

    if not os.path.exists("images"):
        os.makedirs("images")

    history = model.fit(
        train_ds,
        validation_data=val_ds,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        callbacks=[TrainMonitor()],
        steps_per_epoch=split_index // BATCH_SIZE,
    )
    assert set(history.history) == {"loss", "psnr", "val_loss", "val_psnr"}
    assert len(loss_list) == 1 and np.isfinite(loss_list[0])
    rgb, depth = rendered[0]
    assert rgb.shape == (2, 8, 8, 3) and depth.shape == (2, 8, 8)
    assert (0 <= rgb).all() and (rgb <= 1 + 1e-5).all()
    # each ray's weights sum to at most one; the depth is a weighted mean of t in [2, 6 + 1]
    assert (depth >= 0).all() and (depth <= 7.0 + 1e-4).all()

    nerf_model = model.nerf_model
    test_recons_images, depth_maps = render_rgb_depth(
        model=nerf_model,
        rays_flat=test_rays_flat,
        t_vals=test_t_vals,
        rand=True,
        train=False,
    )

    def get_translation_t(t):
        matrix = [
            [1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 1, t],
            [0, 0, 0, 1],
        ]
        return tf.convert_to_tensor(matrix, dtype=tf.float32)

    def get_rotation_phi(phi):
        matrix = [
            [1, 0, 0, 0],
            [0, tf.cos(phi), -tf.sin(phi), 0],
            [0, tf.sin(phi), tf.cos(phi), 0],
            [0, 0, 0, 1],
        ]
        return tf.convert_to_tensor(matrix, dtype=tf.float32)

    def get_rotation_theta(theta):
        matrix = [
            [tf.cos(theta), 0, -tf.sin(theta), 0],
            [0, 1, 0, 0],
            [tf.sin(theta), 0, tf.cos(theta), 0],
            [0, 0, 0, 1],
        ]
        return tf.convert_to_tensor(matrix, dtype=tf.float32)

    def pose_spherical(theta, phi, t):
        c2w = get_translation_t(t)
        c2w = get_rotation_phi(phi / 180.0 * np.pi) @ c2w
        c2w = get_rotation_theta(theta / 180.0 * np.pi) @ c2w
        c2w = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]) @ c2w
        return c2w

    rgb_frames = []
    batch_flat = []
    batch_t = []

    for index, theta in enumerate(np.linspace(0.0, 360.0, 5, endpoint=False)):  # 120
        c2w = pose_spherical(theta, -30.0, 4.0)

        ray_oris, ray_dirs = get_rays(H, W, focal, c2w)
        rays_flat, t_vals = render_flat_rays(
            ray_oris, ray_dirs, near=2.0, far=6.0, num_samples=NUM_SAMPLES, rand=False
        )

        if index % BATCH_SIZE == 0 and index > 0:
            batched_flat = tf.stack(batch_flat, axis=0)
            batch_flat = [rays_flat]

            batched_t = tf.stack(batch_t, axis=0)
            batch_t = [t_vals]

            rgb, _ = render_rgb_depth(
                nerf_model, batched_flat, batched_t, rand=False, train=False
            )

            temp_rgb = [np.clip(255 * img, 0.0, 255.0).astype(np.uint8) for img in rgb]

            rgb_frames = rgb_frames + temp_rgb
        else:
            batch_flat.append(rays_flat)
            batch_t.append(t_vals)

    assert len(rgb_frames) == 4 and all(f.shape == (8, 8, 3) for f in rgb_frames)
    assert all(f.dtype == np.uint8 for f in rgb_frames)
    # pose_spherical is a rigid motion: its rotation block is orthonormal
    c2w = np.asarray(pose_spherical(30.0, -30.0, 4.0))
    np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-5)
    # the exclusive cumulative product used for the transmittance
    x = np.random.default_rng(3).random((2, 5)).astype("float32")
    want = np.concatenate([np.ones((2, 1)), np.cumprod(x, -1)[:, :-1]], -1)
    np.testing.assert_allclose(tf.math.cumprod(x, axis=-1, exclusive=True), want, rtol=1e-6)
