"""keras.io example "Graph attention network (GAT) for node classification"
(examples/graph/gat_node_classification.py).

The example's code as written (Keras 3 source) with `import keras; from keras import layers,
ops` swapped for kgraph: the `GraphAttention` layer (`build` from a list of input shapes,
`add_weight` with initializer/regularizer objects from `keras.initializers.get`/
`keras.regularizers.get`, `ops.take` of target and source rows, `ops.leaky_relu`, `ops.clip`,
`ops.exp`, `ops.segment_sum` with `num_segments=ops.shape(node_states)[0]`, per-edge
normalization), `MultiHeadGraphAttention` (a list of sublayers, concat or mean merge), the
subclassed `GraphAttentionNetwork` holding the graph as attributes and taking node indices,
SGD with momentum, `EarlyStopping(restore_best_weights=True)` on `validation_split`, evaluate,
`predict`, `ops.softmax` and `ops.convert_to_numpy`.

The Cora download and its pandas frames are replaced by the arrays they yield (the stand-in of
the gnn_citations test: 140 papers, 60 terms, 400 citations), the pandas steps written with
numpy. Sizes cut: HIDDEN_UNITS 100 -> 8, epochs 100 -> 2. Checked: one attention head against
a numpy definition (softmax over each target's incoming edges), the parameter count, the
probabilities summing to 1. Marked slow (~6 s: 24 attention heads in one program).
"""

import numpy as np
import pytest

from test_example_gnn_citations import cora_arrays


@pytest.mark.slow
def test_gat_node_classification():
    from kgraph import keras
    from kgraph.keras import layers, ops

    keras.utils.set_random_seed(2)

    paper_ids, paper_subjects, paper_terms, citation_pairs = cora_arrays()

    class_values = sorted(np.unique(paper_subjects))
    class_idx = {name: id for id, name in enumerate(class_values)}
    paper_idx = {name: idx for idx, name in enumerate(sorted(np.unique(paper_ids)))}

    papers_paper_id = np.array([paper_idx[name] for name in paper_ids])
    citations_target = np.array([paper_idx[name] for name in citation_pairs[:, 0]])
    citations_source = np.array([paper_idx[name] for name in citation_pairs[:, 1]])
    papers_subject = np.array([class_idx[value] for value in paper_subjects])

    # Obtain random indices
    random_indices = np.random.permutation(range(len(paper_ids)))

    # 50/50 split (papers.iloc[...])
    train_rows = random_indices[: len(random_indices) // 2]
    test_rows = random_indices[len(random_indices) // 2 :]

    # Obtain paper indices which will be used to gather node states
    train_indices = papers_paper_id[train_rows]
    test_indices = papers_paper_id[test_rows]

    # Obtain ground truth labels corresponding to each paper_id
    train_labels = papers_subject[train_rows]
    test_labels = papers_subject[test_rows]

    # Define graph, namely an edge tensor and a node feature tensor
    edges = ops.convert_to_tensor(np.stack([citations_target, citations_source], 1), dtype="int32")
    node_states = ops.convert_to_tensor(
        paper_terms[np.argsort(papers_paper_id)], dtype="float32"
    )

    print("Edges shape:\t\t", edges.shape)
    print("Node features shape:", node_states.shape)

    class GraphAttention(layers.Layer):
        def __init__(
            self,
            units,
            kernel_initializer="glorot_uniform",
            kernel_regularizer=None,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.units = units
            self.kernel_initializer = keras.initializers.get(kernel_initializer)
            self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        def build(self, input_shape):
            self.kernel = self.add_weight(
                shape=(input_shape[0][-1], self.units),
                trainable=True,
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                name="kernel",
            )
            self.kernel_attention = self.add_weight(
                shape=(self.units * 2, 1),
                trainable=True,
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                name="kernel_attention",
            )
            self.built = True

        def call(self, inputs):
            node_states, edges = inputs

            z = ops.matmul(node_states, self.kernel)

            source_indices = edges[:, 1]
            target_indices = edges[:, 0]

            z_target = ops.take(z, target_indices, axis=0)
            z_source = ops.take(z, source_indices, axis=0)

            z_concat = ops.concatenate([z_target, z_source], axis=-1)
            attention_scores = ops.leaky_relu(ops.matmul(z_concat, self.kernel_attention))
            attention_scores = ops.squeeze(attention_scores, -1)

            attention_scores = ops.exp(ops.clip(attention_scores, -2, 2))

            num_nodes = ops.shape(node_states)[0]
            attention_sum = ops.segment_sum(
                attention_scores, target_indices, num_segments=num_nodes
            )

            # Broadcast sum back to edges to normalize
            attention_sum_per_edge = ops.take(attention_sum, target_indices, axis=0)
            attention_norm = attention_scores / (attention_sum_per_edge + 1e-8)

            node_states_neighbors = ops.take(z, source_indices, axis=0)
            weighted_neighbors = node_states_neighbors * ops.expand_dims(
                attention_norm, axis=-1
            )

            return ops.segment_sum(
                weighted_neighbors, target_indices, num_segments=num_nodes
            )

    class MultiHeadGraphAttention(layers.Layer):
        def __init__(self, units, num_heads=8, merge_type="concat", **kwargs):
            super().__init__(**kwargs)
            self.num_heads = num_heads
            self.merge_type = merge_type
            self.attention_layers = [GraphAttention(units) for _ in range(num_heads)]

        def call(self, inputs):
            node_states, edges = inputs
            outputs = [layer([node_states, edges]) for layer in self.attention_layers]

            if self.merge_type == "concat":
                outputs = ops.concatenate(outputs, axis=-1)
            else:
                outputs = ops.mean(ops.stack(outputs, axis=0), axis=0)

            return ops.relu(outputs)

    class GraphAttentionNetwork(keras.Model):
        def __init__(
            self,
            node_states,
            edges,
            hidden_units,
            num_heads,
            num_layers,
            output_dim,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.node_states = node_states
            self.edges = edges
            self.preprocess = layers.Dense(hidden_units * num_heads, activation="relu")
            self.attention_layers = [
                MultiHeadGraphAttention(hidden_units, num_heads) for _ in range(num_layers)
            ]
            self.output_layer = layers.Dense(output_dim)

        def call(self, inputs, training=False):
            # inputs here are the indices of nodes we want predictions for
            indices = inputs

            x = self.preprocess(self.node_states)
            for attention_layer in self.attention_layers:
                x = attention_layer([x, self.edges]) + x

            # Return only the requested node states
            outputs = self.output_layer(x)
            return ops.take(outputs, indices, axis=0)

    HIDDEN_UNITS = 8  # 100 in the example
    NUM_HEADS = 8
    NUM_LAYERS = 3
    OUTPUT_DIM = len(class_values)

    # Build and compile model
    gat_model = GraphAttentionNetwork(
        node_states, edges, HIDDEN_UNITS, NUM_HEADS, NUM_LAYERS, OUTPUT_DIM
    )

    gat_model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.SGD(learning_rate=0.003, momentum=0.9),
        metrics=["accuracy"],
    )

    history = gat_model.fit(
        x=train_indices,
        y=train_labels,
        validation_split=0.1,
        batch_size=256,
        epochs=2,  # 100 in the example
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=5, restore_best_weights=True
            )
        ],
        verbose=2,
    )
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    _, test_accuracy = gat_model.evaluate(x=test_indices, y=test_labels, verbose=0)

    print("--" * 38 + f"\nTest Accuracy {test_accuracy*100:.1f}%")

    width = HIDDEN_UNITS * NUM_HEADS
    per_head = width * HIDDEN_UNITS + 2 * HIDDEN_UNITS
    assert gat_model.count_params() == (60 * width + width + NUM_LAYERS * NUM_HEADS * per_head
                                        + width * OUTPUT_DIM + OUTPUT_DIM)

    # One head against numpy: softmax (of clipped leaky-relu scores) over each target's edges.
    head = gat_model.attention_layers[0].attention_layers[0]
    x = np.random.default_rng(0).normal(size=(node_states.shape[0], width)).astype("float32")
    e = np.asarray(edges)
    kernel, kernel_attention = head.get_weights()
    z = x @ kernel
    scores = np.concatenate([z[e[:, 0]], z[e[:, 1]]], -1) @ kernel_attention[:, 0]
    scores = np.exp(np.clip(np.where(scores > 0, scores, 0.2 * scores), -2, 2))
    sums = np.zeros(len(x))
    np.add.at(sums, e[:, 0], scores)
    want = np.zeros_like(z)
    np.add.at(want, e[:, 0], z[e[:, 1]] * (scores / (sums[e[:, 0]] + 1e-8))[:, None])
    np.testing.assert_allclose(np.asarray(head([x, edges])), want, rtol=1e-4, atol=1e-5)

    test_logits = gat_model.predict(x=test_indices)

    test_probs = ops.softmax(test_logits)

    test_probs_np = ops.convert_to_numpy(test_probs)
    np.testing.assert_allclose(test_probs_np.sum(-1), 1.0, rtol=1e-5)

    mapping = {v: k for (k, v) in class_idx.items()}

    for i, (probs, label) in enumerate(zip(test_probs_np[:10], test_labels[:10])):
        print(f"Example {i+1}: {mapping[label]}")
        for j, c in zip(probs, class_idx.keys()):
            print(f"\tProbability of {c: <24} = {j*100:7.3f}%")
        print("---" * 20)
