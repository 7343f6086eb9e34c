"""keras.io example "WGAN-GP with R-GCN for the generation of small molecular graphs"
(examples/graph/wgan-graphs.py).

The example's code as written (its stored text, the TensorFlow-era one) with `import tensorflow
as tf; from tensorflow import keras` swapped for kgraph: `smiles_to_graph`/`graph_to_molecule`
over channels-first one-hot adjacency tensors, the generator (`Dense(tf.math.reduce_prod(shape))`,
`Reshape`, `tf.transpose` symmetrisation, `Softmax(axis=1)`), the `RelationalGraphConvLayer`
(`build` from two input shapes, `tf.matmul` of the adjacency with `features[:, None, :, :]` and
of that with a rank-3 kernel, `tf.reduce_sum` over bond types), the discriminator, the `GraphWGAN`
`train_step` (the fit data arrive as one tuple of two arrays; `tf.shape(inputs[0])[0]` of the
traced batch into `tf.random.normal`, a discriminator step whose loss holds the gradient penalty
of `tape.watch`ed interpolated graphs, `tf.norm` of those gradients differentiated again with
respect to the discriminator's weights, a generator step whose `apply_gradients` sits inside its
tape block, metrics created in `compile`), and `sample` (`generator.predict`, `tf.argmax`,
`tf.one_hot(axis=1)`, `tf.linalg.set_diag` to remove self-loops, `.numpy()` of rows).

RDKit is not a dependency: `Chem`/`RDLogger` are the random-graph stand-in
(tests/examples/molecule_standin.py) with QM9's elements (C, N, O, F) and at most 9 heavy atoms;
the QM9 CSV (`get_file`) is replaced by 32 generated rows read with the example's parser;
`MolsToGridImage` is left out. The discriminator's 4 graph convolutions and 2 dense layers
cut to 2 and 1 (the step graph is differentiated twice). Epochs 10 -> 1 (2 steps of 16). Checked: the graph tensors are
one-hot, the R-GCN layer against numpy, both networks' weights move, the sampled adjacency has
no self-loops.
"""

import numpy as np

from molecule_standin import RDLogger, chem

Chem = chem(symbols=("C", "C", "N", "O", "F"), max_atoms=9)


def qm9_csv(path, n=32, seed=0):
    """Stand-in for qm9.csv: a header and rows whose second column is a "SMILES" string."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write("mol_id,smiles,A,B,C\n")
        for i in range(n):
            f.write(f"gdb_{i},{''.join(rng.choice(list('CNOF=#1()'), 9))},1.0,2.0,3.0\n")
    return str(path)


def test_wgan_graphs(tmp_path):
    import kgraph as tf
    from kgraph import keras

    keras.utils.set_random_seed(0)
    RDLogger.DisableLog("rdApp.*")

    csv_path = qm9_csv(tmp_path / "qm9.csv")  # tf.keras.utils.get_file("qm9.csv", url)

    data = []
    with open(csv_path, "r") as f:
        for line in f.readlines()[1:]:
            data.append(line.split(",")[1])

    smiles = data[10]  # data[1000] in the example
    molecule = Chem.MolFromSmiles(smiles)
    assert molecule.GetNumHeavyAtoms() <= 9

    atom_mapping = {"C": 0, 0: "C", "N": 1, 1: "N", "O": 2, 2: "O", "F": 3, 3: "F"}

    bond_mapping = {
        "SINGLE": 0,
        0: Chem.BondType.SINGLE,
        "DOUBLE": 1,
        1: Chem.BondType.DOUBLE,
        "TRIPLE": 2,
        2: Chem.BondType.TRIPLE,
        "AROMATIC": 3,
        3: Chem.BondType.AROMATIC,
    }

    NUM_ATOMS = 9  # Maximum number of atoms
    ATOM_DIM = 4 + 1  # Number of atom types
    BOND_DIM = 4 + 1  # Number of bond types
    LATENT_DIM = 64  # Size of the latent space

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

    graph_to_molecule(smiles_to_graph(smiles))

    adjacency_tensor, feature_tensor = [], []
    for smiles in data:  # data[::10] in the example
        adjacency, features = smiles_to_graph(smiles)
        adjacency_tensor.append(adjacency)
        feature_tensor.append(features)

    adjacency_tensor = np.array(adjacency_tensor)
    feature_tensor = np.array(feature_tensor)
    assert adjacency_tensor.shape == (32, BOND_DIM, NUM_ATOMS, NUM_ATOMS)
    assert feature_tensor.shape == (32, NUM_ATOMS, ATOM_DIM)
    np.testing.assert_array_equal(adjacency_tensor.sum(axis=1), 1.0)  # one channel per pair
    np.testing.assert_array_equal(feature_tensor.sum(axis=2), 1.0)

    def GraphGenerator(
        dense_units, dropout_rate, latent_dim, adjacency_shape, feature_shape,
    ):
        z = keras.layers.Input(shape=(LATENT_DIM,))
        x = z
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
        return keras.Model(inputs=z, outputs=[x_adjacency, x_features], name="Generator")

    generator = GraphGenerator(
        dense_units=[128, 256, 512],
        dropout_rate=0.2,
        latent_dim=LATENT_DIM,
        adjacency_shape=(BOND_DIM, NUM_ATOMS, NUM_ATOMS),
        feature_shape=(NUM_ATOMS, ATOM_DIM),
    )
    generator.summary()

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

    layer = RelationalGraphConvLayer(8, use_bias=True, bias_initializer="ones")
    out = np.asarray(layer([adjacency_tensor[:3], feature_tensor[:3]]))
    kernel, bias = (np.asarray(w) for w in layer.get_weights())
    per_bond = adjacency_tensor[:3] @ feature_tensor[:3, None] @ kernel + bias
    np.testing.assert_allclose(out, np.maximum(per_bond.sum(axis=1), 0), rtol=1e-5, atol=1e-5)

    def GraphDiscriminator(
        gconv_units, dense_units, dropout_rate, adjacency_shape, feature_shape
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
            x = keras.layers.Dense(units, activation="relu")(x)
            x = keras.layers.Dropout(dropout_rate)(x)
        x_out = keras.layers.Dense(1, dtype="float32")(x)
        return keras.Model(inputs=[adjacency, features], outputs=x_out)

    discriminator = GraphDiscriminator(
        gconv_units=[128, 128],  # [128, 128, 128, 128] in the example
        dense_units=[512],  # [512, 512]
        dropout_rate=0.2,
        adjacency_shape=(BOND_DIM, NUM_ATOMS, NUM_ATOMS),
        feature_shape=(NUM_ATOMS, ATOM_DIM),
    )
    discriminator.summary()

    class GraphWGAN(keras.Model):
        def __init__(
            self,
            generator,
            discriminator,
            discriminator_steps=1,
            generator_steps=1,
            gp_weight=10,
            **kwargs
        ):
            super(GraphWGAN, self).__init__(**kwargs)
            self.generator = generator
            self.discriminator = discriminator
            self.discriminator_steps = discriminator_steps
            self.generator_steps = generator_steps
            self.gp_weight = gp_weight
            self.latent_dim = self.generator.input_shape[-1]

        def compile(self, optimizer_generator, optimizer_discriminator, **kwargs):
            super(GraphWGAN, self).compile(**kwargs)
            self.optimizer_generator = optimizer_generator
            self.optimizer_discriminator = optimizer_discriminator
            self.metric_generator = keras.metrics.Mean(name="loss_gen")
            self.metric_discriminator = keras.metrics.Mean(name="loss_dis")

        def train_step(self, inputs):
            if isinstance(inputs[0], tuple):
                inputs = inputs[0]
            graph_real = inputs
            self.batch_size = tf.shape(inputs[0])[0]

            for _ in range(self.discriminator_steps):
                z = tf.random.normal((self.batch_size, self.latent_dim))
                with tf.GradientTape() as tape:
                    graph_generated = self.generator(z, training=True)
                    loss = self._loss_discriminator(graph_real, graph_generated)
                grads = tape.gradient(loss, self.discriminator.trainable_weights)
                self.optimizer_discriminator.apply_gradients(
                    zip(grads, self.discriminator.trainable_weights)
                )
                self.metric_discriminator.update_state(loss)

            for _ in range(self.generator_steps):
                z = tf.random.normal((self.batch_size, self.latent_dim))
                with tf.GradientTape() as tape:
                    graph_generated = self.generator(z, training=True)
                    loss = self._loss_generator(graph_generated)

                    grads = tape.gradient(loss, self.generator.trainable_weights)
                    self.optimizer_generator.apply_gradients(
                        zip(grads, self.generator.trainable_weights)
                    )
                    self.metric_generator.update_state(loss)

            return {m.name: m.result() for m in self.metrics}

        def _loss_discriminator(self, graph_real, graph_generated):
            logits_real = self.discriminator(graph_real, training=True)
            logits_generated = self.discriminator(graph_generated, training=True)
            loss = tf.reduce_mean(logits_generated) - tf.reduce_mean(logits_real)
            loss_gp = self._gradient_penalty(graph_real, graph_generated)
            return loss + loss_gp * self.gp_weight

        def _loss_generator(self, graph_generated):
            logits_generated = self.discriminator(graph_generated, training=True)
            return -tf.reduce_mean(logits_generated)

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
                logits = self.discriminator(
                    [adjacency_interp, features_interp], training=True
                )

            grads = tape.gradient(logits, [adjacency_interp, features_interp])
            grads_adjacency_penalty = (1 - tf.norm(grads[0], axis=1)) ** 2
            grads_features_penalty = (1 - tf.norm(grads[1], axis=2)) ** 2
            return tf.reduce_mean(
                tf.reduce_mean(grads_adjacency_penalty, axis=(-2, -1))
                + tf.reduce_mean(grads_features_penalty, axis=(-1))
            )

    wgan = GraphWGAN(generator, discriminator, discriminator_steps=1)

    wgan.compile(
        optimizer_generator=keras.optimizers.Adam(5e-4),
        optimizer_discriminator=keras.optimizers.Adam(5e-4),
    )

    generator_start = [np.array(w) for w in generator.get_weights()]
    discriminator_start = [np.array(w) for w in discriminator.get_weights()]
    history = wgan.fit([adjacency_tensor, feature_tensor], epochs=1, batch_size=16)  # 10 epochs
    assert {"loss_gen", "loss_dis"} <= set(history.history)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert all(np.abs(a - b).max() > 0 for a, b in zip(generator.get_weights(), generator_start))
    moved = [np.abs(a - b).max() > 0
             for a, b in zip(discriminator.get_weights(), discriminator_start)]
    # the last bias adds the same to real and generated logits and leaves the penalty alone:
    # its gradient is exactly zero
    assert all(moved[:-1]) and not moved[-1]

    def sample(generator, batch_size):
        z = tf.random.normal((batch_size, LATENT_DIM))
        graph = generator.predict(z)
        adjacency = tf.argmax(graph[0], axis=1)
        adjacency = tf.one_hot(adjacency, depth=BOND_DIM, axis=1)
        adjacency = tf.linalg.set_diag(adjacency, tf.zeros(tf.shape(adjacency)[:-1]))
        sample.adjacency = adjacency  # (kept for the check below)
        features = tf.argmax(graph[1], axis=2)
        features = tf.one_hot(features, depth=ATOM_DIM, axis=2)
        return [
            graph_to_molecule([adjacency[i].numpy(), features[i].numpy()])
            for i in range(batch_size)
        ]

    molecules = sample(wgan.generator, batch_size=48)
    assert len(molecules) == 48
    adjacency = np.asarray(sample.adjacency)
    assert adjacency.shape == (48, BOND_DIM, NUM_ATOMS, NUM_ATOMS)
    assert not np.diagonal(adjacency, axis1=2, axis2=3).any()  # self-loops removed
