"""keras.io example "Deep Q Network Method" (examples/rl/deep_q_network_cartpole.py).

The example's code as written (its stored text, the TensorFlow-era one) with `import tensorflow
as tf; from tensorflow import keras; from tensorflow.keras import layers` swapped for kgraph: a
functional Q-network compiled with `keras.losses.MeanSquaredError()`, eager calls on
`tf.expand_dims(tf.convert_to_tensor(state), 0)` read by `np.argmax(action_probs[0])`,
epsilon-greedy actions, replay sampling with `np.take`, per-sample target Q-values from
`np.amax(model(...)[0])` written into `np.array(model(state))[0]`, and `model.fit` on
`tf.convert_to_tensor` of the states and the list of updated Q-value rows.

`gym.make("CartPole-v0")` is replaced by the CartPole stand-in (tests/examples/example_envs.py,
episodes of at most 12 steps); batch_size 128 -> 16 and the run-until-solved loop cut to 2
episodes. Checked: each replay step fits the states to targets equal to the model's own
Q-values except at the taken action (against numpy), and the fits move the weights.
"""

import numpy as np

from example_envs import CartPole


def test_deep_q_network_cartpole():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)

    # Configuration paramaters for the whole setup
    seed = 42
    gamma = 0.99  # Discount factor for past rewards
    epsilon = 1.0  # epsilon greedy parameter
    epsilon_min = 0.01  # minimum epsilon greedy parameter
    epsilon_decay = 0.999  # rate at which to reduce chance of random action being taken
    batch_size = 16  # 128 in the example
    max_steps_per_episode = 10000
    env = CartPole(max_steps=12)  # gym.make("CartPole-v0") in the example
    env.seed(seed)
    eps = np.finfo(np.float32).eps.item()  # Smallest number such that 1.0 + eps != 1.0

    num_inputs = 4
    num_actions = 2
    num_hidden = 24

    inputs = layers.Input(shape=(num_inputs,))
    hidden_layer_1 = layers.Dense(num_hidden, activation="relu")(inputs)
    hidden_layer_2 = layers.Dense(num_hidden, activation="relu")(hidden_layer_1)
    action = layers.Dense(num_actions, activation="linear")(hidden_layer_2)

    model = keras.Model(inputs=inputs, outputs=action)

    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    mse_loss = keras.losses.MeanSquaredError()
    model.compile(loss=mse_loss, optimizer=optimizer)

    action_history = []
    state_history = []
    state_next_history = []
    rewards_history = []
    done_history = []
    running_reward = 0
    episode_count = 0

    start = model.get_weights()
    fits = 0
    while True:  # Run until solved
        state = env.reset()
        episode_reward = 0

        for timestep in range(1, max_steps_per_episode):
            state_tensor = tf.convert_to_tensor(state)
            state_tensor = tf.expand_dims(state_tensor, 0)

            # Predict action q-values
            # from environment state
            action_probs = model(state_tensor)

            # take best action
            action = np.argmax(action_probs[0])

            # use epsilon-greedy for exploration
            if epsilon > np.random.rand(1)[0]:
                # take random action
                action = np.random.choice(num_actions)

            # decay probability of taking random action
            epsilon *= epsilon_decay
            epsilon = max(epsilon_min, epsilon)

            # Apply the sampled action in our environment
            state_next, reward, done, _ = env.step(action)

            episode_reward += reward

            # save actions and states in replay buffer
            action_history.append(action)
            state_history.append(state)
            state_next_history.append(state_next)
            done_history.append(done)
            rewards_history.append(reward if not done else -1)
            state = state_next

            if len(done_history) > batch_size:
                # sample from history for replay
                indices = np.random.choice(range(len(state_history)), size=batch_size)

                state_sample = np.take(state_history, indices, axis=0)
                state_next_sample = np.take(state_next_history, indices, axis=0)
                rewards_sample = np.take(rewards_history, indices, axis=0)
                done_sample = np.take(done_history, indices, axis=0)
                action_sample = np.take(action_history, indices, axis=0)

                history = zip(
                    state_sample,
                    state_next_sample,
                    rewards_sample,
                    done_sample,
                    action_sample,
                )

                updated_q_values = []
                for (
                    sampled_state,
                    sampled_state_next,
                    sampled_reward,
                    sampled_done,
                    sampled_action,
                ) in history:

                    q_update = sampled_reward
                    if not sampled_done:
                        # Calculate the new q value
                        sampled_state_next = tf.convert_to_tensor(sampled_state_next)
                        sampled_state_next = tf.expand_dims(sampled_state_next, 0)
                        # q value = reward + discount factor * expected future reward
                        q_update = sampled_reward + gamma * np.amax(
                            model(sampled_state_next)[0]
                        )

                    sampled_state = tf.convert_to_tensor(sampled_state)
                    sampled_state = tf.expand_dims(sampled_state, 0)

                    # replace old q value with the updated value
                    q_value = np.array(model(sampled_state))[0]
                    q_value[sampled_action] = q_update

                    updated_q_values.append(q_value)

                # the targets: the model's Q-values but at the taken action
                own = np.asarray(model.predict(state_sample, verbose=0))
                targets = np.array(updated_q_values)
                others = np.arange(num_actions)[None, :] != action_sample[:, None]
                np.testing.assert_allclose(targets[others], own[others], rtol=1e-5, atol=1e-6)

                # train the model on the states and updated q values
                model.fit(
                    tf.convert_to_tensor(state_sample),
                    tf.convert_to_tensor(updated_q_values),
                    verbose=0,
                )
                fits += 1

                # limit the state and reward history
                mem = 100000
                if len(rewards_history) > mem:
                    rewards_history = rewards_history[-mem:]
                    state_history = state_history[-mem:]
                    state_next_history = state_next_history[-mem:]
                    action_history = action_history[-mem:]
                    done_history = done_history[-mem:]

            if done:
                break
        # Update running reward to check condition for solving
        running_reward = 0.05 * episode_reward + (1 - 0.05) * running_reward

        # Log details
        episode_count += 1
        if episode_count % 10 == 0:
            template = "running reward: {:.2f} at episode {}"
            print(template.format(running_reward, episode_count))

        if running_reward > 195 or episode_count == 2:  # the example: running_reward > 195
            print("Solved at episode {}!".format(episode_count))
            break

    assert fits == len(done_history) - batch_size > 0
    assert all(not np.allclose(a, b) for a, b in zip(model.get_weights(), start))
