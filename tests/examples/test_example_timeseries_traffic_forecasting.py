"""keras.io example "Traffic forecasting using graph neural networks and LSTM"
(examples/timeseries/timeseries_traffic_forecasting.py).

The example's code as written (its stored text, the TensorFlow-era one: last modified
2021/12/28) with `import tensorflow as tf; from tensorflow import keras; from tensorflow.keras
import layers` (and `tensorflow.keras.preprocessing`) swapped for kgraph: the normalized
train/validation/test split, `timeseries_dataset_from_array` inputs and targets joined with
`tf.data.Dataset.zip` (`shuffle`, `prefetch`, `cache`), the adjacency matrix from the distances,
a `GraphConv` layer (a `tf.Variable` weight from `keras.initializers.glorot_uniform()`,
`tf.gather` of neighbour rows, `tf.math.unsorted_segment_mean` per node, `tf.matmul`,
`tf.concat`), the `LSTMGC` layer (`tf.transpose`, `tf.shape` of a tensor whose batch is on
axis 1, `tf.reshape` to `(batch * nodes, steps, features)` for an LSTM and back), RMSprop,
EarlyStopping, and the naive-vs-model errors on `next(test_dataset.as_numpy_iterator())`.

The PeMSD7 download (`keras.utils.get_file`) and its pandas `read_csv` are replaced by the two
arrays they yield (pandas is not a dependency): random distances between 228 stations
(symmetric, some under the edge threshold) and random speeds; sizes cut: 200 time steps
instead of 12,672, epochs 20 -> 2. The matplotlib plots are left out.
"""

import typing

import numpy as np


def pems_arrays(num_time_steps=200, num_routes=228, seed=0):
    """Stand-in for W_228.csv and V_228.csv: distances (m) and speeds (mph)."""
    rng = np.random.default_rng(seed)
    distances = rng.uniform(0.0, 8000.0, (num_routes, num_routes))
    distances = np.triu(distances, 1) + np.triu(distances, 1).T
    speeds = 60.0 + 8.0 * rng.normal(size=(num_time_steps, num_routes)).cumsum(0) / 10.0
    return distances, speeds


def test_timeseries_traffic_forecasting():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)

    route_distances, speeds_array = pems_arrays()

    print(f"route_distances shape={route_distances.shape}")
    print(f"speeds_array shape={speeds_array.shape}")

    sample_routes = [
        0, 1, 4, 7, 8, 11, 15, 108, 109, 114, 115, 118, 120,
        123, 124, 126, 127, 129, 130, 132, 133, 136, 139, 144, 147, 216,
    ]
    route_distances = route_distances[np.ix_(sample_routes, sample_routes)]
    speeds_array = speeds_array[:, sample_routes]

    print(f"route_distances shape={route_distances.shape}")
    print(f"speeds_array shape={speeds_array.shape}")

    train_size, val_size = 0.5, 0.2

    def preprocess(data_array: np.ndarray, train_size: float, val_size: float):
        num_time_steps = data_array.shape[0]
        num_train, num_val = int(num_time_steps * train_size), int(num_time_steps * val_size)
        train_array = data_array[:num_train]
        mean, std = train_array.mean(axis=0), train_array.std(axis=0)

        train_array = (train_array - mean) / std
        val_array = (data_array[num_train : (num_train + num_val)] - mean) / std
        test_array = (data_array[(num_train + num_val) :] - mean) / std

        return train_array, val_array, test_array

    train_array, val_array, test_array = preprocess(speeds_array, train_size, val_size)

    print(f"train set size: {train_array.shape}")
    print(f"validation set size: {val_array.shape}")
    print(f"test set size: {test_array.shape}")

    from kgraph.keras.preprocessing import timeseries_dataset_from_array

    batch_size = 64
    input_sequence_length = 12
    forecast_horizon = 3
    multi_horizon = False

    def create_tf_dataset(
        data_array: np.ndarray,
        input_sequence_length: int,
        forecast_horizon: int,
        batch_size: int = 128,
        shuffle=True,
        multi_horizon=True,
    ):
        inputs = timeseries_dataset_from_array(
            np.expand_dims(data_array[:-forecast_horizon], axis=-1),
            None,
            sequence_length=input_sequence_length,
            shuffle=False,
            batch_size=batch_size,
        )

        target_offset = (
            input_sequence_length
            if multi_horizon
            else input_sequence_length + forecast_horizon - 1
        )
        target_seq_length = forecast_horizon if multi_horizon else 1
        targets = timeseries_dataset_from_array(
            data_array[target_offset:],
            None,
            sequence_length=target_seq_length,
            shuffle=False,
            batch_size=batch_size,
        )

        dataset = tf.data.Dataset.zip((inputs, targets))
        if shuffle:
            dataset = dataset.shuffle(100)

        return dataset.prefetch(16).cache()

    train_dataset, val_dataset = (
        create_tf_dataset(data_array, input_sequence_length, forecast_horizon, batch_size)
        for data_array in [train_array, val_array]
    )

    test_dataset = create_tf_dataset(
        test_array,
        input_sequence_length,
        forecast_horizon,
        batch_size=test_array.shape[0],
        shuffle=False,
        multi_horizon=multi_horizon,
    )

    def compute_adjacency_matrix(
        route_distances: np.ndarray, sigma2: float, epsilon: float
    ):
        num_routes = route_distances.shape[0]
        route_distances = route_distances / 10000.0
        w2, w_mask = (
            route_distances * route_distances,
            np.ones([num_routes, num_routes]) - np.identity(num_routes),
        )
        return (np.exp(-w2 / sigma2) >= epsilon) * w_mask

    class GraphInfo:
        def __init__(self, edges: typing.Tuple[list, list], num_nodes: int):
            self.edges = edges
            self.num_nodes = num_nodes

    sigma2 = 0.1
    epsilon = 0.5
    adjacency_matrix = compute_adjacency_matrix(route_distances, sigma2, epsilon)
    node_indices, neighbor_indices = np.where(adjacency_matrix == 1)
    graph = GraphInfo(
        edges=(node_indices.tolist(), neighbor_indices.tolist()),
        num_nodes=adjacency_matrix.shape[0],
    )
    print(f"number of nodes: {graph.num_nodes}, number of edges: {len(graph.edges[0])}")
    assert graph.num_nodes == 26 and 0 < len(graph.edges[0]) < 26 * 25

    class GraphConv(layers.Layer):
        def __init__(
            self,
            in_feat,
            out_feat,
            graph_info: GraphInfo,
            aggregation_type="mean",
            combination_type="concat",
            activation: typing.Optional[str] = None,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.in_feat = in_feat
            self.out_feat = out_feat
            self.graph_info = graph_info
            self.aggregation_type = aggregation_type
            self.combination_type = combination_type
            self.weight = tf.Variable(
                initial_value=keras.initializers.glorot_uniform()(
                    shape=(in_feat, out_feat), dtype="float32"
                ),
                trainable=True,
            )
            self.activation = layers.Activation(activation)

        def aggregate(self, neighbour_representations: tf.Tensor):
            aggregation_func = {
                "sum": tf.math.unsorted_segment_sum,
                "mean": tf.math.unsorted_segment_mean,
                "max": tf.math.unsorted_segment_max,
            }.get(self.aggregation_type)

            if aggregation_func:
                return aggregation_func(
                    neighbour_representations,
                    self.graph_info.edges[0],
                    num_segments=self.graph_info.num_nodes,
                )

            raise ValueError(f"Invalid aggregation type: {self.aggregation_type}")

        def compute_nodes_representation(self, features: tf.Tensor):
            return tf.matmul(features, self.weight)

        def compute_aggregated_messages(self, features: tf.Tensor):
            neighbour_representations = tf.gather(features, self.graph_info.edges[1])
            aggregated_messages = self.aggregate(neighbour_representations)
            return tf.matmul(aggregated_messages, self.weight)

        def update(self, nodes_representation: tf.Tensor, aggregated_messages: tf.Tensor):
            if self.combination_type == "concat":
                h = tf.concat([nodes_representation, aggregated_messages], axis=-1)
            elif self.combination_type == "add":
                h = nodes_representation + aggregated_messages
            else:
                raise ValueError(f"Invalid combination type: {self.combination_type}.")

            return self.activation(h)

        def call(self, features: tf.Tensor):
            nodes_representation = self.compute_nodes_representation(features)
            aggregated_messages = self.compute_aggregated_messages(features)
            return self.update(nodes_representation, aggregated_messages)

    class LSTMGC(layers.Layer):
        """Layer comprising a convolution layer followed by LSTM and dense layers."""

        def __init__(
            self,
            in_feat,
            out_feat,
            lstm_units: int,
            input_seq_len: int,
            output_seq_len: int,
            graph_info: GraphInfo,
            graph_conv_params: typing.Optional[dict] = None,
            **kwargs,
        ):
            super().__init__(**kwargs)

            # graph conv layer
            if graph_conv_params is None:
                graph_conv_params = {
                    "aggregation_type": "mean",
                    "combination_type": "concat",
                    "activation": None,
                }
            self.graph_conv = GraphConv(in_feat, out_feat, graph_info, **graph_conv_params)

            self.lstm = layers.LSTM(lstm_units, activation="relu")
            self.dense = layers.Dense(output_seq_len)

            self.input_seq_len, self.output_seq_len = input_seq_len, output_seq_len

        def call(self, inputs):
            # convert shape to  (num_nodes, batch_size, input_seq_len, in_feat)
            inputs = tf.transpose(inputs, [2, 0, 1, 3])

            gcn_out = self.graph_conv(
                inputs
            )  # gcn_out has shape: (num_nodes, batch_size, input_seq_len, out_feat)
            shape = tf.shape(gcn_out)
            num_nodes, batch_size, input_seq_len, out_feat = (
                shape[0],
                shape[1],
                shape[2],
                shape[3],
            )

            # LSTM takes only 3D tensors as input
            gcn_out = tf.reshape(gcn_out, (batch_size * num_nodes, input_seq_len, out_feat))
            lstm_out = self.lstm(
                gcn_out
            )  # lstm_out has shape: (batch_size * num_nodes, lstm_units)

            dense_output = self.dense(
                lstm_out
            )  # dense_output has shape: (batch_size * num_nodes, output_seq_len)
            output = tf.reshape(dense_output, (num_nodes, batch_size, self.output_seq_len))
            return tf.transpose(
                output, [1, 2, 0]
            )  # returns Tensor of shape (batch_size, output_seq_len, num_nodes)

    in_feat = 1
    batch_size = 64
    epochs = 2
    input_sequence_length = 12
    forecast_horizon = 3
    multi_horizon = False
    out_feat = 10
    lstm_units = 64
    graph_conv_params = {
        "aggregation_type": "mean",
        "combination_type": "concat",
        "activation": None,
    }

    st_gcn = LSTMGC(
        in_feat,
        out_feat,
        lstm_units,
        input_sequence_length,
        forecast_horizon,
        graph,
        graph_conv_params,
    )
    inputs = layers.Input((input_sequence_length, graph.num_nodes, in_feat))
    outputs = st_gcn(inputs)

    model = keras.models.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=0.0002),
        loss=keras.losses.MeanSquaredError(),
    )
    history = model.fit(
        train_dataset,
        validation_data=val_dataset,
        epochs=epochs,
        callbacks=[keras.callbacks.EarlyStopping(patience=10)],
    )

    x_test, y = next(test_dataset.as_numpy_iterator())
    y_pred = model.predict(x_test)

    naive_mse, model_mse = (
        np.square(x_test[:, -1, :, 0] - y[:, 0, :]).mean(),
        np.square(y_pred[:, 0, :] - y[:, 0, :]).mean(),
    )
    print(f"naive MAE: {naive_mse}, model MAE: {model_mse}")

    # 60 test steps: 60 - 3 - 12 + 1 windows, targets one step (multi_horizon=False)
    assert x_test.shape == (46, 12, 26, 1) and y.shape == (46, 1, 26)
    assert outputs.shape == (None, 3, 26) and y_pred.shape == (46, 3, 26)
    assert np.isfinite([naive_mse, model_mse]).all()
    assert set(history.history) == {"loss", "val_loss"} and len(history.history["loss"]) == 2
    # the GraphConv weight (a tf.Variable), LSTM(64) over 2 x 10 features, Dense(3)
    assert model.count_params() == 10 + 4 * (20 * 64 + 64 * 64 + 64) + (64 * 3 + 3)

    # GraphConv against numpy: each node's features and the mean of its neighbours', both
    # projected by the weight, concatenated
    features = np.random.default_rng(2).normal(size=(26, 2, 12, 1)).astype("float32")
    weight = st_gcn.graph_conv.weight.numpy()
    nodes, neighbours = (np.asarray(e) for e in graph.edges)
    mean = np.zeros_like(features)
    for node in range(26):
        if (nodes == node).any():
            mean[node] = features[neighbours[nodes == node]].mean(axis=0)
    expected = np.concatenate([features @ weight, mean @ weight], axis=-1)
    np.testing.assert_allclose(st_gcn.graph_conv(features), expected, rtol=1e-5, atol=1e-6)
