"""keras.io example "Deep Q-Learning for Atari Breakout" (examples/rl/deep_q_network_breakout.py).

The example's code as written (Keras 3 source, last modified 2024/03/17) with `import keras;
from keras import layers; import tensorflow as tf` swapped for kgraph: the DeepMind Q-network as
a Sequential starting with a `Lambda` transposing (4, 84, 84) frame stacks to channels-last
(`keras.ops.transpose`, `output_shape`, `input_shape`), Conv2D 8/4, 4/2, 3/1, Flatten, Dense;
a target copy; Adam with `clipnorm`; epsilon-greedy actions (`keras.ops.convert_to_tensor`,
`keras.ops.expand_dims`, `model(state_tensor, training=False)`,
`keras.ops.argmax(action_probs[0]).numpy()`); replay sampling, `model_target.predict`, a Python
list plus `gamma * keras.ops.amax(...)`, `keras.ops.one_hot` masks, `keras.ops.sum(
keras.ops.multiply(...))`, `keras.losses.Huber()` in a `tf.GradientTape`, `apply_gradients`
and `model_target.set_weights(model.get_weights())`.

gymnasium's `BreakoutNoFrameskip-v4` with `AtariPreprocessing` and `FrameStack(env, 4)` is
replaced by a stand-in yielding 84x84 uint8 frames of a paddle and a bouncing ball with the
same API (tests/examples/example_envs.py). Sizes cut: max_steps_per_episode 10000 -> 24,
max_episodes 10 -> 2, epsilon_random_frames 50000 -> 20 and epsilon_greedy_frames 1e6 -> 30 (so the greedy branch runs),
update_target_network 10000 -> 40. Checked: 1,686,180 parameters (as real Keras counts), the
Q-network updates move the weights and the target network takes them at frame 40.
"""

import numpy as np

import example_envs as gym
from example_envs import AtariPreprocessing, FrameStack


def test_deep_q_network_breakout():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)

    # Configuration paramaters for the whole setup
    seed = 42
    gamma = 0.99  # Discount factor for past rewards
    epsilon = 1.0  # Epsilon greedy parameter
    epsilon_min = 0.1  # Minimum epsilon greedy parameter
    epsilon_max = 1.0  # Maximum epsilon greedy parameter
    epsilon_interval = (
        epsilon_max - epsilon_min
    )  # Rate at which to reduce chance of random action being taken
    batch_size = 32  # Size of batch taken from replay buffer
    max_steps_per_episode = 24  # 10000 in the example
    max_episodes = 2  # 10 in the example

    env = gym.make("BreakoutNoFrameskip-v4")  # , render_mode="human")
    # Environment preprocessing
    env = AtariPreprocessing(env)
    # Stack four frames
    env = FrameStack(env, 4)
    env.seed(seed)

    num_actions = 4

    def create_q_model():
        # Network defined by the Deepmind paper
        return keras.Sequential(
            [
                layers.Lambda(
                    lambda tensor: keras.ops.transpose(tensor, [0, 2, 3, 1]),
                    output_shape=(84, 84, 4),
                    input_shape=(4, 84, 84),
                ),
                # Convolutions on the frames on the screen
                layers.Conv2D(32, 8, strides=4, activation="relu", input_shape=(4, 84, 84)),
                layers.Conv2D(64, 4, strides=2, activation="relu"),
                layers.Conv2D(64, 3, strides=1, activation="relu"),
                layers.Flatten(),
                layers.Dense(512, activation="relu"),
                layers.Dense(num_actions, activation="linear"),
            ]
        )

    model = create_q_model()
    model_target = create_q_model()
    assert model.count_params() == 1_686_180
    assert model.output_shape == (None, 4)

    optimizer = keras.optimizers.Adam(learning_rate=0.00025, clipnorm=1.0)

    # Experience replay buffers
    action_history = []
    state_history = []
    state_next_history = []
    rewards_history = []
    done_history = []
    episode_reward_history = []
    running_reward = 0
    episode_count = 0
    frame_count = 0
    # Number of frames to take random action and observe output
    epsilon_random_frames = 20  # 50000 in the example
    # Number of frames for exploration
    epsilon_greedy_frames = 30.0  # 1000000.0 in the example
    # Maximum replay length
    max_memory_length = 100000
    # Train the model after 4 actions
    update_after_actions = 4
    # How often to update the target network
    update_target_network = 40  # 10000 in the example
    # Using huber loss for stability
    loss_function = keras.losses.Huber()

    start = model.get_weights()
    greedy_actions, losses, target_synced = [], [], []

    while True:
        observation, _ = env.reset()
        state = np.array(observation)
        episode_reward = 0

        for timestep in range(1, max_steps_per_episode):
            frame_count += 1

            # Use epsilon-greedy for exploration
            if frame_count < epsilon_random_frames or epsilon > np.random.rand(1)[0]:
                # Take random action
                action = np.random.choice(num_actions)
            else:
                # Predict action Q-values
                # From environment state
                state_tensor = keras.ops.convert_to_tensor(state)
                state_tensor = keras.ops.expand_dims(state_tensor, 0)
                action_probs = model(state_tensor, training=False)
                # Take best action
                action = keras.ops.argmax(action_probs[0]).numpy()
                greedy_actions.append(int(action))

            # Decay probability of taking random action
            epsilon -= epsilon_interval / epsilon_greedy_frames
            epsilon = max(epsilon, epsilon_min)

            # Apply the sampled action in our environment
            state_next, reward, done, _, _ = env.step(action)
            state_next = np.array(state_next)

            episode_reward += reward

            # Save actions and states in replay buffer
            action_history.append(action)
            state_history.append(state)
            state_next_history.append(state_next)
            done_history.append(done)
            rewards_history.append(reward)
            state = state_next

            # Update every fourth frame and once batch size is over 32
            if frame_count % update_after_actions == 0 and len(done_history) > batch_size:
                # Get indices of samples for replay buffers
                indices = np.random.choice(range(len(done_history)), size=batch_size)

                # Using list comprehension to sample from replay buffer
                state_sample = np.array([state_history[i] for i in indices])
                state_next_sample = np.array([state_next_history[i] for i in indices])
                rewards_sample = [rewards_history[i] for i in indices]
                action_sample = [action_history[i] for i in indices]
                done_sample = keras.ops.convert_to_tensor(
                    [float(done_history[i]) for i in indices]
                )

                # Build the updated Q-values for the sampled future states
                # Use the target model for stability
                future_rewards = model_target.predict(state_next_sample)
                # Q value = reward + discount factor * expected future reward
                updated_q_values = rewards_sample + gamma * keras.ops.amax(
                    future_rewards, axis=1
                )

                # If final frame set the last value to -1
                updated_q_values = updated_q_values * (1 - done_sample) - done_sample

                # Create a mask so we only calculate loss on the updated Q-values
                masks = keras.ops.one_hot(action_sample, num_actions)

                with tf.GradientTape() as tape:
                    # Train the model on the states and updated Q-values
                    q_values = model(state_sample)

                    # Apply the masks to the Q-values to get the Q-value for action taken
                    q_action = keras.ops.sum(keras.ops.multiply(q_values, masks), axis=1)
                    # Calculate loss between new Q-value and old Q-value
                    loss = loss_function(updated_q_values, q_action)

                # Backpropagation
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                losses.append(float(loss))

            if frame_count % update_target_network == 0:
                # update the the target network with new weights
                model_target.set_weights(model.get_weights())
                target_synced.append(frame_count)
                synced_weights = model.get_weights()
                # Log details
                template = "running reward: {:.2f} at episode {}, frame count {}"
                print(template.format(running_reward, episode_count, frame_count))

            # Limit the state and reward history
            if len(rewards_history) > max_memory_length:
                del rewards_history[:1]
                del state_history[:1]
                del state_next_history[:1]
                del action_history[:1]
                del done_history[:1]

            if done:
                break

        # Update running reward to check condition for solving
        episode_reward_history.append(episode_reward)
        if len(episode_reward_history) > 100:
            del episode_reward_history[:1]
        running_reward = np.mean(episode_reward_history)

        episode_count += 1

        if running_reward > 40:  # Condition to consider the task solved
            print("Solved at episode {}!".format(episode_count))
            break

        if (
            max_episodes > 0 and episode_count >= max_episodes
        ):  # Maximum number of episodes reached
            print("Stopped at episode {}!".format(episode_count))
            break

    assert episode_count == 2 and frame_count == 46
    assert greedy_actions and all(a in range(num_actions) for a in greedy_actions)
    assert len(losses) == 3 and all(np.isfinite(losses))  # trained at frames 36, 40, 44
    assert target_synced == [40]
    assert all(not np.allclose(a, b) for a, b in zip(model.get_weights(), start))
    for a, b in zip(model_target.get_weights(), synced_weights):
        np.testing.assert_array_equal(a, b)
