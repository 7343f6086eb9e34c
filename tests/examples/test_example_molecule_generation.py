"""keras.io example "Drug Molecule Generation with VAE" (examples/generative/
molecule_generation.py).

The stored source (`import tensorflow as tf; from tensorflow import keras; from
tensorflow.keras import layers`) with those imports swapped for kgraph, as written: the ZINC CSV
through `keras.utils.get_file`, the SMILES clean-up and charset/mappings, `smiles_to_graph`
(channels-first adjacency and one-hot features) and `graph_to_molecule` (`RWMol`,
`SanitizeMol`), the `RelationalGraphConvLayer` (`build` from a list of input shapes, weights of
`dtype=tf.float32`, `tf.matmul` of the adjacency with broadcast features), the encoder
(`GlobalAveragePooling1D`, z_mean/log_var), the decoder (`Dense(tf.math.reduce_prod(shape))`,
reshape, symmetrized by `tf.transpose(x, (0, 1, 3, 2))`, `Softmax(axis=1)`/`(axis=2)`), the
`Sampling` layer (`tf.keras.backend.random_normal` of a run-time shape), and the
`MoleculeGenerator` whose `train_step` (on `fit([adjacency, features, qed])` without targets,
`data[0]`) sets `self.batch_size = tf.shape(...)[0]`, adds categorical/binary cross-entropy,
KL and a gradient penalty (an inner tape watching the interpolated graphs, `tf.norm` of its
gradients, differentiated again by the outer tape); `inference` (`decoder.predict`,
`tf.argmax`, `tf.one_hot(axis=...)`, `tf.linalg.set_diag` with `tf.zeros(tf.shape(x)[:-1])`)
and the latent `encoder.predict`.

Changes: RDKit (not a dependency) is the random-graph stand-in of tests/examples/
molecule_standin.py, pandas a small stand-in with the calls made (`read_csv`, column
`apply`/`str.len`, `head`, `sample`, `reset_index(inplace=True)`, `loc`), the ZINC download a
generated CSV whose path replaces "/content/..." (outside the test's folder), `MolsToGridImage`
and the plots are left out. Sizes: 8,000 molecules -> 16, NUM_ATOMS 120 -> 12 (the stand-in's
largest molecule), LATENT_DIM 435 -> 8, the encoder's Dense 512 -> 16 and the decoder's
128/256/512 -> 8/8/16, 10 epochs -> 1, 1,000 generated molecules -> 4. Checked: the graphs'
one-hot channels and symmetry, the graph convolution against numpy, the decoder's symmetric
softmax adjacency, finite loss, generated adjacencies without self-loops.
"""
import numpy as np

from molecule_standin import RDLogger, chem


class _Str:
    def __init__(self, column):
        self._column = column

    def len(self):
        return _Column([len(v) for v in self._column.values])


class _Column:
    def __init__(self, values):
        self.values = list(values)

    def __iter__(self):
        return iter(self.values)

    def apply(self, fn):
        return _Column([fn(v) for v in self.values])

    @property
    def str(self):
        return _Str(self)


class _Row(dict):
    pass


class _Locator:
    def __init__(self, frame):
        self._frame = frame

    def __getitem__(self, label):
        row = self._frame._index.index(label)
        return _Row({k: v[row] for k, v in self._frame._columns.items()})


class _DataFrame:
    """The part of a pandas DataFrame the example uses."""

    def __init__(self, columns, index=None):
        self._columns = {k: list(v) for k, v in columns.items()}
        n = len(next(iter(self._columns.values())))
        self._index = list(range(n)) if index is None else list(index)
        self.loc = _Locator(self)

    def __getitem__(self, name):
        return _Column(self._columns[name])

    def __setitem__(self, name, column):
        self._columns[name] = list(column.values)

    def head(self, n=5):
        return _DataFrame({k: v[:n] for k, v in self._columns.items()}, self._index[:n])

    def sample(self, frac, random_state):
        order = np.random.RandomState(random_state).permutation(len(self._index))[
            :int(round(frac * len(self._index)))]
        return _DataFrame({k: [v[i] for i in order] for k, v in self._columns.items()},
                          [self._index[i] for i in order])

    def reset_index(self, drop, inplace):
        assert drop and inplace
        self._index = list(range(len(self._index)))


def _read_csv(path):  # pd.read_csv
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    for k in ("logP", "qed", "SAS"):
        columns[k] = [float(v) for v in columns[k]]
    return _DataFrame(columns)


def _zinc_csv(path, n=22, seed=0):
    import csv

    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", "logP", "qed", "SAS"])
        for _ in range(n):
            smiles = "".join(rng.choice(list("CNOSF=()1"), int(rng.integers(8, 30))))
            writer.writerow([smiles + "\n", rng.normal(), rng.random(), rng.uniform(1, 5)])


def test_molecule_generation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import ast
    import types

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)
    pd = types.SimpleNamespace(read_csv=_read_csv)
    Chem = chem()
    BondType = Chem.BondType

    RDLogger.DisableLog("rdApp.*")

    zinc = str(tmp_path / "250k_rndm_zinc_drugs_clean_3.csv")  # "/content/250k_..."
    _zinc_csv(zinc)
    csv_path = keras.utils.get_file(
        zinc,
        "https://raw.githubusercontent.com/aspuru-guzik-group/chemical_vae/master/models/"
        "zinc_properties/250k_rndm_zinc_drugs_clean_3.csv",
    )
    assert csv_path == zinc

    df = pd.read_csv(zinc)
    df["smiles"] = df["smiles"].apply(lambda s: s.replace("\n", ""))
    df.head()

    SMILE_CHARSET = '["C", "B", "F", "I", "H", "O", "N", "S", "P", "Cl", "Br"]'

    bond_mapping = {"SINGLE": 0, "DOUBLE": 1, "TRIPLE": 2, "AROMATIC": 3}
    bond_mapping.update(
        {0: BondType.SINGLE, 1: BondType.DOUBLE, 2: BondType.TRIPLE, 3: BondType.AROMATIC}
    )
    SMILE_CHARSET = ast.literal_eval(SMILE_CHARSET)

    MAX_MOLSIZE = max(df["smiles"].str.len())
    assert 8 <= MAX_MOLSIZE < 30
    SMILE_to_index = dict((c, i) for i, c in enumerate(SMILE_CHARSET))
    index_to_SMILE = dict((i, c) for i, c in enumerate(SMILE_CHARSET))
    atom_mapping = dict(SMILE_to_index)
    atom_mapping.update(index_to_SMILE)

    BATCH_SIZE = 100  # noqa: F841 - as written (fit uses its default batch size)
    EPOCHS = 1  # 10

    VAE_LR = 5e-4
    NUM_ATOMS = 12  # 120

    ATOM_DIM = len(SMILE_CHARSET)
    BOND_DIM = 4 + 1
    LATENT_DIM = 8  # 435

    def smiles_to_graph(smiles):
        molecule = Chem.MolFromSmiles(smiles)

        adjacency = np.zeros((BOND_DIM, NUM_ATOMS, NUM_ATOMS), "float32")
        features = np.zeros((NUM_ATOMS, ATOM_DIM), "float32")

        for atom in molecule.GetAtoms():
            i = atom.GetIdx()
            atom_type = atom_mapping[atom.GetSymbol()]
            features[i] = np.eye(ATOM_DIM)[atom_type]
            for neighbor in atom.GetNeighbors():
                j = neighbor.GetIdx()
                bond = molecule.GetBondBetweenAtoms(i, j)
                bond_type_idx = bond_mapping[bond.GetBondType().name]
                adjacency[bond_type_idx, [i, j], [j, i]] = 1

        adjacency[-1, np.sum(adjacency, axis=0) == 0] = 1

        features[np.where(np.sum(features, axis=1) == 0)[0], -1] = 1

        return adjacency, features

    def graph_to_molecule(graph):
        adjacency, features = graph

        molecule = Chem.RWMol()

        keep_idx = np.where(
            (np.argmax(features, axis=1) != ATOM_DIM - 1)
            & (np.sum(adjacency[:-1], axis=(0, 1)) != 0)
        )[0]
        features = features[keep_idx]
        adjacency = adjacency[:, keep_idx, :][:, :, keep_idx]

        for atom_type_idx in np.argmax(features, axis=1):
            atom = Chem.Atom(atom_mapping[atom_type_idx])
            _ = molecule.AddAtom(atom)

        (bonds_ij, atoms_i, atoms_j) = np.where(np.triu(adjacency) == 1)
        for (bond_ij, atom_i, atom_j) in zip(bonds_ij, atoms_i, atoms_j):
            if atom_i == atom_j or bond_ij == BOND_DIM - 1:
                continue
            bond_type = bond_mapping[bond_ij]
            molecule.AddBond(int(atom_i), int(atom_j), bond_type)

        flag = Chem.SanitizeMol(molecule, catchErrors=True)
        if flag != Chem.SanitizeFlags.SANITIZE_NONE:
            return None

        return molecule

    train_df = df.sample(frac=0.75, random_state=42)
    train_df.reset_index(drop=True, inplace=True)

    adjacency_tensor, feature_tensor, qed_tensor = [], [], []
    for idx in range(16):  # 8000
        adjacency, features = smiles_to_graph(train_df.loc[idx]["smiles"])
        qed = train_df.loc[idx]["qed"]
        adjacency_tensor.append(adjacency)
        feature_tensor.append(features)
        qed_tensor.append(qed)

    adjacency_tensor = np.array(adjacency_tensor)
    feature_tensor = np.array(feature_tensor)
    qed_tensor = np.array(qed_tensor)
    assert adjacency_tensor.shape == (16, 5, 12, 12) and feature_tensor.shape == (16, 12, 11)
    np.testing.assert_array_equal(adjacency_tensor.sum(1), 1)  # one channel per atom pair
    np.testing.assert_array_equal(adjacency_tensor, adjacency_tensor.transpose(0, 1, 3, 2))
    np.testing.assert_array_equal(feature_tensor.sum(-1), 1)

    class RelationalGraphConvLayer(keras.layers.Layer):
        def __init__(
            self,
            units=128,
            activation="relu",
            use_bias=False,
            kernel_initializer="glorot_uniform",
            bias_initializer="zeros",
            kernel_regularizer=None,
            bias_regularizer=None,
            **kwargs
        ):
            super().__init__(**kwargs)

            self.units = units
            self.activation = keras.activations.get(activation)
            self.use_bias = use_bias
            self.kernel_initializer = keras.initializers.get(kernel_initializer)
            self.bias_initializer = keras.initializers.get(bias_initializer)
            self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
            self.bias_regularizer = keras.regularizers.get(bias_regularizer)

        def build(self, input_shape):
            bond_dim = input_shape[0][1]
            atom_dim = input_shape[1][2]

            self.kernel = self.add_weight(
                shape=(bond_dim, atom_dim, self.units),
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                trainable=True,
                name="W",
                dtype=tf.float32,
            )

            if self.use_bias:
                self.bias = self.add_weight(
                    shape=(bond_dim, 1, self.units),
                    initializer=self.bias_initializer,
                    regularizer=self.bias_regularizer,
                    trainable=True,
                    name="b",
                    dtype=tf.float32,
                )

            self.built = True

        def call(self, inputs, training=False):
            adjacency, features = inputs
            x = tf.matmul(adjacency, features[:, None, :, :])
            x = tf.matmul(x, self.kernel)
            if self.use_bias:
                x += self.bias
            x_reduced = tf.reduce_sum(x, axis=1)
            return self.activation(x_reduced)

    gconv = RelationalGraphConvLayer(3)
    out = np.asarray(gconv([adjacency_tensor[:2], feature_tensor[:2]]))
    want = np.maximum(np.einsum("bkij,bjf,kfu->biu", adjacency_tensor[:2], feature_tensor[:2],
                                gconv.kernel.numpy()), 0)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)

    def get_encoder(
        gconv_units, latent_dim, adjacency_shape, feature_shape, dense_units, dropout_rate
    ):
        adjacency = keras.layers.Input(shape=adjacency_shape)
        features = keras.layers.Input(shape=feature_shape)

        features_transformed = features
        for units in gconv_units:
            features_transformed = RelationalGraphConvLayer(units)(
                [adjacency, features_transformed]
            )
        x = keras.layers.GlobalAveragePooling1D()(features_transformed)

        for units in dense_units:
            x = layers.Dense(units, activation="relu")(x)
            x = layers.Dropout(dropout_rate)(x)

        z_mean = layers.Dense(latent_dim, dtype="float32", name="z_mean")(x)
        log_var = layers.Dense(latent_dim, dtype="float32", name="log_var")(x)

        encoder = keras.Model([adjacency, features], [z_mean, log_var], name="encoder")

        return encoder

    def get_decoder(dense_units, dropout_rate, latent_dim, adjacency_shape, feature_shape):
        latent_inputs = keras.Input(shape=(latent_dim,))

        x = latent_inputs
        for units in dense_units:
            x = keras.layers.Dense(units, activation="tanh")(x)
            x = keras.layers.Dropout(dropout_rate)(x)

        x_adjacency = keras.layers.Dense(tf.math.reduce_prod(adjacency_shape))(x)
        x_adjacency = keras.layers.Reshape(adjacency_shape)(x_adjacency)
        x_adjacency = (x_adjacency + tf.transpose(x_adjacency, (0, 1, 3, 2))) / 2
        x_adjacency = keras.layers.Softmax(axis=1)(x_adjacency)

        x_features = keras.layers.Dense(tf.math.reduce_prod(feature_shape))(x)
        x_features = keras.layers.Reshape(feature_shape)(x_features)
        x_features = keras.layers.Softmax(axis=2)(x_features)

        decoder = keras.Model(
            latent_inputs, outputs=[x_adjacency, x_features], name="decoder"
        )

        return decoder

    class Sampling(layers.Layer):
        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch = tf.shape(z_log_var)[0]
            dim = tf.shape(z_log_var)[1]
            epsilon = tf.keras.backend.random_normal(shape=(batch, dim))
            return z_mean + tf.exp(0.5 * z_log_var) * epsilon

    class MoleculeGenerator(keras.Model):
        def __init__(self, encoder, decoder, max_len, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder
            self.property_prediction_layer = layers.Dense(1)
            self.max_len = max_len

            self.train_total_loss_tracker = keras.metrics.Mean(name="train_total_loss")
            self.val_total_loss_tracker = keras.metrics.Mean(name="val_total_loss")

        def train_step(self, data):
            adjacency_tensor, feature_tensor, qed_tensor = data[0]
            graph_real = [adjacency_tensor, feature_tensor]
            self.batch_size = tf.shape(qed_tensor)[0]
            with tf.GradientTape() as tape:
                z_mean, z_log_var, qed_pred, gen_adjacency, gen_features = self(
                    graph_real, training=True
                )
                graph_generated = [gen_adjacency, gen_features]
                total_loss = self._compute_loss(
                    z_log_var, z_mean, qed_tensor, qed_pred, graph_real, graph_generated
                )

            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))

            self.train_total_loss_tracker.update_state(total_loss)
            return {"loss": self.train_total_loss_tracker.result()}

        def _compute_loss(
            self, z_log_var, z_mean, qed_true, qed_pred, graph_real, graph_generated
        ):

            adjacency_real, features_real = graph_real
            adjacency_gen, features_gen = graph_generated

            adjacency_loss = tf.reduce_mean(
                tf.reduce_sum(
                    keras.losses.categorical_crossentropy(adjacency_real, adjacency_gen),
                    axis=(1, 2),
                )
            )
            features_loss = tf.reduce_mean(
                tf.reduce_sum(
                    keras.losses.categorical_crossentropy(features_real, features_gen),
                    axis=(1),
                )
            )
            kl_loss = -0.5 * tf.reduce_sum(
                1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), 1
            )
            kl_loss = tf.reduce_mean(kl_loss)

            property_loss = tf.reduce_mean(
                keras.losses.binary_crossentropy(qed_true, qed_pred)
            )

            graph_loss = self._gradient_penalty(graph_real, graph_generated)

            return kl_loss + property_loss + graph_loss + adjacency_loss + features_loss

        def _gradient_penalty(self, graph_real, graph_generated):
            adjacency_real, features_real = graph_real
            adjacency_generated, features_generated = graph_generated

            alpha = tf.random.uniform([self.batch_size])
            alpha = tf.reshape(alpha, (self.batch_size, 1, 1, 1))
            adjacency_interp = (adjacency_real * alpha) + (1 - alpha) * adjacency_generated
            alpha = tf.reshape(alpha, (self.batch_size, 1, 1))
            features_interp = (features_real * alpha) + (1 - alpha) * features_generated

            with tf.GradientTape() as tape:
                tape.watch(adjacency_interp)
                tape.watch(features_interp)
                _, _, logits, _, _ = self(
                    [adjacency_interp, features_interp], training=True
                )

            grads = tape.gradient(logits, [adjacency_interp, features_interp])
            grads_adjacency_penalty = (1 - tf.norm(grads[0], axis=1)) ** 2
            grads_features_penalty = (1 - tf.norm(grads[1], axis=2)) ** 2
            return tf.reduce_mean(
                tf.reduce_mean(grads_adjacency_penalty, axis=(-2, -1))
                + tf.reduce_mean(grads_features_penalty, axis=(-1))
            )

        def inference(self, batch_size):
            z = tf.random.normal((batch_size, LATENT_DIM))
            reconstruction_adjacency, reconstruction_features = model.decoder.predict(z)
            adjacency = tf.argmax(reconstruction_adjacency, axis=1)
            adjacency = tf.one_hot(adjacency, depth=BOND_DIM, axis=1)
            adjacency = tf.linalg.set_diag(adjacency, tf.zeros(tf.shape(adjacency)[:-1]))
            features = tf.argmax(reconstruction_features, axis=2)
            features = tf.one_hot(features, depth=ATOM_DIM, axis=2)
            return [
                graph_to_molecule([adjacency[i].numpy(), features[i].numpy()])
                for i in range(batch_size)
            ]

        def call(self, inputs):
            z_mean, log_var = self.encoder(inputs)
            z = Sampling()([z_mean, log_var])

            gen_adjacency, gen_features = self.decoder(z)

            property_pred = self.property_prediction_layer(z_mean)

            return z_mean, log_var, property_pred, gen_adjacency, gen_features

    vae_optimizer = tf.keras.optimizers.Adam(learning_rate=VAE_LR)

    encoder = get_encoder(
        gconv_units=[9],
        adjacency_shape=(BOND_DIM, NUM_ATOMS, NUM_ATOMS),
        feature_shape=(NUM_ATOMS, ATOM_DIM),
        latent_dim=LATENT_DIM,
        dense_units=[16],  # [512]
        dropout_rate=0.0,
    )
    decoder = get_decoder(
        dense_units=[8, 8, 16],  # [128, 256, 512]
        dropout_rate=0.2,
        latent_dim=LATENT_DIM,
        adjacency_shape=(BOND_DIM, NUM_ATOMS, NUM_ATOMS),
        feature_shape=(NUM_ATOMS, ATOM_DIM),
    )

    model = MoleculeGenerator(encoder, decoder, MAX_MOLSIZE)

    model.compile(vae_optimizer)
    history = model.fit([adjacency_tensor, feature_tensor, qed_tensor], epochs=EPOCHS)
    assert set(history.history) == {"loss"} and np.isfinite(history.history["loss"][0])

    adjacency_gen, features_gen = decoder.predict(np.zeros((2, LATENT_DIM), "float32"),
                                                  verbose=0)
    np.testing.assert_allclose(adjacency_gen, adjacency_gen.transpose(0, 1, 3, 2), atol=1e-6)
    np.testing.assert_allclose(adjacency_gen.sum(1), 1.0, rtol=1e-5)

    molecules = model.inference(4)  # 1000
    assert len(molecules) == 4
    assert all(m is None or isinstance(m, Chem.RWMol) for m in molecules)
    kept = [m for m in molecules if m is not None][:1000]  # MolsToGridImage(...) left out
    assert all(i != j for m in kept for i, j, _ in m.bonds)  # no self-loops

    z_mean, _ = model.encoder.predict([adjacency_tensor[:16], feature_tensor[:16]])
    assert z_mean.shape == (16, LATENT_DIM)
