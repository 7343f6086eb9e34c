"""keras.io example "Node Classification with Graph Neural Networks"
(examples/graph/gnn_citations.py).

The example's code as written (its stored text, the TensorFlow-era one) with `import tensorflow
as tf; from tensorflow import keras; from tensorflow.keras import layers` swapped for kgraph:
`run_experiment` (Adam, `SparseCategoricalCrossentropy(from_logits=True)`, an `"acc"`-named
accuracy, `EarlyStopping(monitor="val_acc", restore_best_weights=True)`, `validation_split`),
`create_ffn` Sequentials of BatchNormalization/Dropout/Dense(`tf.nn.gelu`), the baseline with
skip connections, `keras.activations.softmax(tf.convert_to_tensor(logits)).numpy()`, the
`GraphConvLayer` (`tf.gather` of neighbour rows, `tf.expand_dims` edge weights,
`tf.math.unsorted_segment_sum`/`mean`/`max`, `tf.concat`, `tf.nn.l2_normalize`) and the
subclassed `GNNNodeClassifier` holding the whole graph as attributes (`tf.ones`,
`tf.math.reduce_sum`, `tf.cast(..., dtype=tf.dtypes.float32)`), called on a Python list of node
indices, trained, evaluated, then given new nodes and edges by assigning its attributes before
`predict`.

The Cora download (`keras.utils.get_file`) and its pandas frames are replaced by the arrays
the pandas code yields (pandas is not a dependency): 140 papers with random 0/1 term vectors
of 60 words (1,433 in Cora) and Cora's seven subject names, 400 random citations; the pandas
steps (id and subject index maps, the per-subject 50% split, shuffles) are written with numpy.
`num_epochs` 300 -> 2; the matplotlib/networkx plots are left out. Checked: the graph
convolution against a numpy definition, the summary's parameter counts, and that the new
nodes' predictions use the assigned graph. Marked slow (~6 s: four programs compiled for
two models, the baseline's 5 FFN blocks).
"""

import numpy as np
import pytest

CORA_SUBJECTS = ["Case_Based", "Genetic_Algorithms", "Neural_Networks",
                 "Probabilistic_Methods", "Reinforcement_Learning", "Rule_Learning", "Theory"]


def cora_arrays(num_papers=140, num_terms=60, num_citations=400, seed=0):
    """Stand-in for cora.content and cora.cites: paper ids, subject names, term vectors, and
    (target, source) citation pairs of paper ids."""
    rng = np.random.default_rng(seed)
    paper_ids = rng.choice(np.arange(1000, 100000), num_papers, replace=False)
    subjects = np.array([CORA_SUBJECTS[i % 7] for i in rng.permutation(num_papers)])
    terms = (rng.random((num_papers, num_terms)) < 0.1).astype(np.int64)
    citations = rng.choice(paper_ids, (num_citations, 2))
    return paper_ids, subjects, terms, citations


@pytest.mark.slow
def test_gnn_citations():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)
    np.random.seed(0)

    paper_ids, paper_subjects, paper_terms, citation_pairs = cora_arrays()
    print("Citations shape:", citation_pairs.shape)

    # What the pandas code does, on the arrays: zero-based paper and subject indices.
    class_values = sorted(np.unique(paper_subjects))
    class_idx = {name: id for id, name in enumerate(class_values)}
    paper_idx = {name: idx for idx, name in enumerate(sorted(np.unique(paper_ids)))}
    papers_paper_id = np.array([paper_idx[name] for name in paper_ids])
    citations_target = np.array([paper_idx[name] for name in citation_pairs[:, 0]])
    citations_source = np.array([paper_idx[name] for name in citation_pairs[:, 1]])
    papers_subject = np.array([class_idx[value] for value in paper_subjects])

    # The stratified split: about 50% of each subject for training, then shuffled.
    train_rows, test_rows = [], []
    for subject in range(len(class_values)):
        rows = np.flatnonzero(papers_subject == subject)
        random_selection = np.random.rand(len(rows)) <= 0.5
        train_rows.append(rows[random_selection])
        test_rows.append(rows[~random_selection])
    train_rows = np.random.permutation(np.concatenate(train_rows))
    test_rows = np.random.permutation(np.concatenate(test_rows))

    hidden_units = [32, 32]
    learning_rate = 0.01
    dropout_rate = 0.5
    num_epochs = 2  # 300 in the example
    batch_size = 256

    def run_experiment(model, x_train, y_train):
        # Compile the model.
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
        )
        # Create an early stopping callback.
        early_stopping = keras.callbacks.EarlyStopping(
            monitor="val_acc", patience=50, restore_best_weights=True
        )
        # Fit the model.
        history = model.fit(
            x=x_train,
            y=y_train,
            epochs=num_epochs,
            batch_size=batch_size,
            validation_split=0.15,
            callbacks=[early_stopping],
        )

        return history

    def create_ffn(hidden_units, dropout_rate, name=None):
        fnn_layers = []

        for units in hidden_units:
            fnn_layers.append(layers.BatchNormalization())
            fnn_layers.append(layers.Dropout(dropout_rate))
            fnn_layers.append(layers.Dense(units, activation=tf.nn.gelu))

        return keras.Sequential(fnn_layers, name=name)

    num_features = paper_terms.shape[1]
    num_classes = len(class_idx)

    # Create train and test features as a numpy array.
    x_train = paper_terms[train_rows]
    x_test = paper_terms[test_rows]
    # Create train and test targets as a numpy array.
    y_train = papers_subject[train_rows]
    y_test = papers_subject[test_rows]

    def create_baseline_model(hidden_units, num_classes, dropout_rate=0.2):
        inputs = layers.Input(shape=(num_features,), name="input_features")
        x = create_ffn(hidden_units, dropout_rate, name=f"ffn_block1")(inputs)
        for block_idx in range(4):
            # Create an FFN block.
            x1 = create_ffn(hidden_units, dropout_rate, name=f"ffn_block{block_idx + 2}")(x)
            # Add skip connection.
            x = layers.Add(name=f"skip_connection{block_idx + 2}")([x, x1])
        # Compute logits.
        logits = layers.Dense(num_classes, name="logits")(x)
        # Create the model.
        return keras.Model(inputs=inputs, outputs=logits, name="baseline")

    baseline_model = create_baseline_model(hidden_units, num_classes, dropout_rate)
    baseline_model.summary()
    # ffn_block1: BN(60) + Dense(60->32) + BN(32) + Dense(32->32); blocks 2-5 on 32 features
    block1 = 4 * 60 + 60 * 32 + 32 + 4 * 32 + 32 * 32 + 32
    block = 2 * (4 * 32 + 32 * 32 + 32)
    assert baseline_model.count_params() == block1 + 4 * block + 32 * 7 + 7

    history = run_experiment(baseline_model, x_train, y_train)
    assert set(history.history) >= {"loss", "acc", "val_loss", "val_acc"}

    _, test_accuracy = baseline_model.evaluate(x=x_test, y=y_test, verbose=0)
    print(f"Test accuracy: {round(test_accuracy * 100, 2)}%")

    def generate_random_instances(num_instances):
        token_probability = x_train.mean(axis=0)
        instances = []
        for _ in range(num_instances):
            probabilities = np.random.uniform(size=len(token_probability))
            instance = (probabilities <= token_probability).astype(int)
            instances.append(instance)

        return np.array(instances)

    def display_class_probabilities(probabilities):
        for instance_idx, probs in enumerate(probabilities):
            print(f"Instance {instance_idx + 1}:")
            for class_idx, prob in enumerate(probs):
                print(f"- {class_values[class_idx]}: {round(prob * 100, 2)}%")

    new_instances = generate_random_instances(num_classes)
    logits = baseline_model.predict(new_instances)
    probabilities = keras.activations.softmax(tf.convert_to_tensor(logits)).numpy()
    display_class_probabilities(probabilities)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    # Create an edges array (sparse adjacency matrix) of shape [2, num_edges].
    edges = np.stack([citations_source, citations_target])
    # Create an edge weights array of ones.
    edge_weights = tf.ones(shape=edges.shape[1])
    # Create a node features array of shape [num_nodes, num_features].
    node_features = tf.cast(
        paper_terms[np.argsort(papers_paper_id)], dtype=tf.dtypes.float32
    )
    # Create graph info tuple with node_features, edges, and edge_weights.
    graph_info = (node_features, edges, edge_weights)

    print("Edges shape:", edges.shape)
    print("Nodes shape:", node_features.shape)

    class GraphConvLayer(layers.Layer):
        def __init__(
            self,
            hidden_units,
            dropout_rate=0.2,
            aggregation_type="mean",
            combination_type="concat",
            normalize=False,
            *args,
            **kwargs,
        ):
            super(GraphConvLayer, self).__init__(*args, **kwargs)

            self.aggregation_type = aggregation_type
            self.combination_type = combination_type
            self.normalize = normalize

            self.ffn_prepare = create_ffn(hidden_units, dropout_rate)
            if self.combination_type == "gated":
                self.update_fn = layers.GRU(
                    units=hidden_units,
                    activation="tanh",
                    recurrent_activation="sigmoid",
                    dropout=dropout_rate,
                    return_state=True,
                    recurrent_dropout=dropout_rate,
                )
            else:
                self.update_fn = create_ffn(hidden_units, dropout_rate)

        def prepare(self, node_repesentations, weights=None):
            # node_repesentations shape is [num_edges, embedding_dim].
            messages = self.ffn_prepare(node_repesentations)
            if weights is not None:
                messages = messages * tf.expand_dims(weights, -1)
            return messages

        def aggregate(self, node_indices, neighbour_messages, node_repesentations):
            num_nodes = node_repesentations.shape[0]
            if self.aggregation_type == "sum":
                aggregated_message = tf.math.unsorted_segment_sum(
                    neighbour_messages, node_indices, num_segments=num_nodes
                )
            elif self.aggregation_type == "mean":
                aggregated_message = tf.math.unsorted_segment_mean(
                    neighbour_messages, node_indices, num_segments=num_nodes
                )
            elif self.aggregation_type == "max":
                aggregated_message = tf.math.unsorted_segment_max(
                    neighbour_messages, node_indices, num_segments=num_nodes
                )
            else:
                raise ValueError(f"Invalid aggregation type: {self.aggregation_type}.")

            return aggregated_message

        def update(self, node_repesentations, aggregated_messages):
            if self.combination_type == "gru":
                # Create a sequence of two elements for the GRU layer.
                h = tf.stack([node_repesentations, aggregated_messages], axis=1)
            elif self.combination_type == "concat":
                # Concatenate the node_repesentations and aggregated_messages.
                h = tf.concat([node_repesentations, aggregated_messages], axis=1)
            elif self.combination_type == "add":
                # Add node_repesentations and aggregated_messages.
                h = node_repesentations + aggregated_messages
            else:
                raise ValueError(f"Invalid combination type: {self.combination_type}.")

            # Apply the processing function.
            node_embeddings = self.update_fn(h)
            if self.combination_type == "gru":
                node_embeddings = tf.unstack(node_embeddings, axis=1)[-1]

            if self.normalize:
                node_embeddings = tf.nn.l2_normalize(node_embeddings, axis=-1)
            return node_embeddings

        def call(self, inputs):
            node_repesentations, edges, edge_weights = inputs
            # Get node_indices (source) and neighbour_indices (target) from edges.
            node_indices, neighbour_indices = edges[0], edges[1]
            # neighbour_repesentations shape is [num_edges, representation_dim].
            neighbour_repesentations = tf.gather(node_repesentations, neighbour_indices)

            # Prepare the messages of the neighbours.
            neighbour_messages = self.prepare(neighbour_repesentations, edge_weights)
            # Aggregate the neighbour messages.
            aggregated_messages = self.aggregate(node_indices, neighbour_messages, node_repesentations)
            # Update the node embedding with the neighbour messages.
            return self.update(node_repesentations, aggregated_messages)

    class GNNNodeClassifier(tf.keras.Model):
        def __init__(
            self,
            graph_info,
            num_classes,
            hidden_units,
            aggregation_type="sum",
            combination_type="concat",
            dropout_rate=0.2,
            normalize=True,
            *args,
            **kwargs,
        ):
            super(GNNNodeClassifier, self).__init__(*args, **kwargs)

            # Unpack graph_info to three elements: node_features, edges, and edge_weight.
            node_features, edges, edge_weights = graph_info
            self.node_features = node_features
            self.edges = edges
            self.edge_weights = edge_weights
            # Set edge_weights to ones if not provided.
            if self.edge_weights is None:
                self.edge_weights = tf.ones(shape=edges.shape[1])
            # Scale edge_weights to sum to 1.
            self.edge_weights = self.edge_weights / tf.math.reduce_sum(self.edge_weights)

            # Create a process layer.
            self.preprocess = create_ffn(hidden_units, dropout_rate, name="preprocess")
            # Create the first GraphConv layer.
            self.conv1 = GraphConvLayer(
                hidden_units,
                dropout_rate,
                aggregation_type,
                combination_type,
                normalize,
                name="graph_conv1",
            )
            # Create the second GraphConv layer.
            self.conv2 = GraphConvLayer(
                hidden_units,
                dropout_rate,
                aggregation_type,
                combination_type,
                normalize,
                name="graph_conv2",
            )
            # Create a postprocess layer.
            self.postprocess = create_ffn(hidden_units, dropout_rate, name="postprocess")
            # Create a compute logits layer.
            self.compute_logits = layers.Dense(units=num_classes, name="logits")

        def call(self, input_node_indices):
            # Preprocess the node_features to produce node representations.
            x = self.preprocess(self.node_features)
            # Apply the first graph conv layer.
            x1 = self.conv1((x, self.edges, self.edge_weights))
            # Skip connection.
            x = x1 + x
            # Apply the second graph conv layer.
            x2 = self.conv2((x, self.edges, self.edge_weights))
            # Skip connection.
            x = x2 + x
            # Postprocess node embedding.
            x = self.postprocess(x)
            # Fetch node embeddings for the input node_indices.
            node_embeddings = tf.gather(x, input_node_indices)
            # Compute logits
            return self.compute_logits(node_embeddings)

    gnn_model = GNNNodeClassifier(
        graph_info=graph_info,
        num_classes=num_classes,
        hidden_units=hidden_units,
        dropout_rate=dropout_rate,
        name="gnn_model",
    )

    print("GNN output shape:", gnn_model([1, 10, 100]))
    assert gnn_model([1, 10, 100]).shape == (3, num_classes)

    gnn_model.summary()

    # The graph convolution (sum aggregation, concat, l2-normalized) against numpy, the FFNs
    # in inference mode.
    def ffn_numpy(ffn, x):
        for layer in ffn.layers:
            if isinstance(layer, layers.BatchNormalization):
                gamma, beta, mean, var = layer.get_weights()
                x = gamma * (x - mean) / np.sqrt(var + layer.epsilon) + beta
            elif isinstance(layer, layers.Dense):
                kernel, bias = layer.get_weights()
                x = np.asarray(keras.activations.gelu(x @ kernel + bias))
        return x

    conv = gnn_model.conv1
    x0 = np.random.default_rng(1).normal(size=(node_features.shape[0], 32)).astype(np.float32)
    weights = np.asarray(gnn_model.edge_weights)
    messages = ffn_numpy(conv.ffn_prepare, x0[edges[1]]) * weights[:, None]
    aggregated = np.zeros_like(x0)
    np.add.at(aggregated, edges[0], messages)
    want = ffn_numpy(conv.update_fn, np.concatenate([x0, aggregated], axis=1))
    want = want / np.sqrt(np.maximum((want ** 2).sum(-1, keepdims=True), 1e-12))
    # `call` on arrays: an eager layer call traces with the first axis left open, which
    # `num_segments=node_repesentations.shape[0]` cannot take (the model's graph is constant)
    got = conv.call((x0, edges, gnn_model.edge_weights))
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-5)

    x_train = papers_paper_id[train_rows]
    history = run_experiment(gnn_model, x_train, y_train)
    assert len(history.history["val_acc"]) == num_epochs

    x_test = papers_paper_id[test_rows]
    _, test_accuracy = gnn_model.evaluate(x=x_test, y=y_test, verbose=0)
    print(f"Test accuracy: {round(test_accuracy * 100, 2)}%")

    # First we add the N new_instances as nodes to the graph
    # by appending the new_instance to node_features.
    num_nodes = node_features.shape[0]
    new_node_features = np.concatenate([node_features, new_instances])
    # Second we add the M edges (citations) from each new node to a set
    # of existing nodes in a particular subject
    new_node_indices = [i + num_nodes for i in range(num_classes)]
    new_citations = []
    for subject_idx in range(num_classes):  # papers.groupby("subject")
        subject_papers = list(papers_paper_id[papers_subject == subject_idx])
        # Select random x papers specific subject.
        selected_paper_indices1 = np.random.choice(subject_papers, 5)
        # Select random y papers from any subject (where y < x).
        selected_paper_indices2 = np.random.choice(list(papers_paper_id), 2)
        # Merge the selected paper indices.
        selected_paper_indices = np.concatenate(
            [selected_paper_indices1, selected_paper_indices2], axis=0
        )
        # Create edges between a citing paper idx and the selected cited papers.
        citing_paper_indx = new_node_indices[subject_idx]
        for cited_paper_idx in selected_paper_indices:
            new_citations.append([citing_paper_indx, cited_paper_idx])

    new_citations = np.array(new_citations).T
    new_edges = np.concatenate([edges, new_citations], axis=1)

    print("Original node_features shape:", gnn_model.node_features.shape)
    print("Original edges shape:", gnn_model.edges.shape)
    gnn_model.node_features = new_node_features
    gnn_model.edges = new_edges
    gnn_model.edge_weights = tf.ones(shape=new_edges.shape[1])
    print("New node_features shape:", gnn_model.node_features.shape)
    print("New edges shape:", gnn_model.edges.shape)

    logits = gnn_model.predict(tf.convert_to_tensor(new_node_indices))
    probabilities = keras.activations.softmax(tf.convert_to_tensor(logits)).numpy()
    display_class_probabilities(probabilities)
    assert probabilities.shape == (num_classes, num_classes)
    # the predictions read the assigned graph: the same as a direct call on it
    np.testing.assert_allclose(
        logits, np.asarray(gnn_model(np.array(new_node_indices))), rtol=1e-4, atol=1e-5)
