"""keras.io example "Actor Critic Method" (examples/rl/actor_critic_cartpole.py).

The example's code as written (its stored text, the TensorFlow-era one) with
`import tensorflow as tf; from tensorflow import keras; from tensorflow.keras import layers`
swapped for kgraph: a functional model with two outputs (softmax actor, linear critic) called
eagerly on each state inside one `tf.GradientTape` spanning the whole episode, `tf.math.log`
of an indexed probability, `keras.losses.Huber()` on `tf.expand_dims`'d scalars, the Python
`sum` of the per-step losses, `tape.gradient` and `apply_gradients(zip(...))`.

`gym.make("CartPole-v0")` is replaced by a CartPole stand-in with the same physics and API
(tests/examples/example_envs.py) whose episodes end after 12 steps; the "run until solved"
loop (`while True` until the running reward passes 195) is cut to 2 episodes. Checked: the
episode's loss gradient reaches every weight of the shared and both head layers, and the
update moves them.
"""

import numpy as np

from example_envs import CartPole


def test_actor_critic_cartpole():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    # Configuration parameters for the whole setup
    seed = 42
    gamma = 0.99  # Discount factor for past rewards
    max_steps_per_episode = 10000
    env = CartPole(max_steps=12)  # Create the environment (gym.make("CartPole-v0") in the example)
    env.seed(seed)
    eps = np.finfo(np.float32).eps.item()  # Smallest number such that 1.0 + eps != 1.0
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)

    num_inputs = 4
    num_actions = 2
    num_hidden = 128

    inputs = layers.Input(shape=(num_inputs,))
    common = layers.Dense(num_hidden, activation="relu")(inputs)
    action = layers.Dense(num_actions, activation="softmax")(common)
    critic = layers.Dense(1)(common)

    model = keras.Model(inputs=inputs, outputs=[action, critic])
    assert model.count_params() == 4 * 128 + 128 + 128 * 2 + 2 + 128 + 1

    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    huber_loss = keras.losses.Huber()
    action_probs_history = []
    critic_value_history = []
    rewards_history = []
    running_reward = 0
    episode_count = 0
    losses = []

    while True:  # Run until solved
        state = env.reset()
        episode_reward = 0
        before = [v.numpy().copy() for v in model.trainable_variables]
        with tf.GradientTape() as tape:
            for timestep in range(1, max_steps_per_episode):
                state = tf.convert_to_tensor(state)
                state = tf.expand_dims(state, 0)

                # Predict action probabilities and estimated future rewards
                # from environment state
                action_probs, critic_value = model(state)
                critic_value_history.append(critic_value[0, 0])

                # Sample action from action probability distribution
                action = np.random.choice(num_actions, p=np.squeeze(action_probs))
                action_probs_history.append(tf.math.log(action_probs[0, action]))

                # Apply the sampled action in our environment
                state, reward, done, _ = env.step(action)
                rewards_history.append(reward)
                episode_reward += reward

                if done:
                    break

            # Update running reward to check condition for solving
            running_reward = 0.05 * episode_reward + (1 - 0.05) * running_reward

            returns = []
            discounted_sum = 0
            for r in rewards_history[::-1]:
                discounted_sum = r + gamma * discounted_sum
                returns.insert(0, discounted_sum)

            # Normalize
            returns = np.array(returns)
            returns = (returns - np.mean(returns)) / (np.std(returns) + eps)
            returns = returns.tolist()

            # Calculating loss values to update our network
            history = zip(action_probs_history, critic_value_history, returns)
            actor_losses = []
            critic_losses = []
            for log_prob, value, ret in history:
                diff = ret - value
                actor_losses.append(-log_prob * diff)  # actor loss

                critic_losses.append(
                    huber_loss(tf.expand_dims(value, 0), tf.expand_dims(ret, 0))
                )

            # Backpropagation
            loss_value = sum(actor_losses) + sum(critic_losses)
            grads = tape.gradient(loss_value, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))

            # Clear the loss and reward history
            action_probs_history.clear()
            critic_value_history.clear()
            rewards_history.clear()

        losses.append(float(loss_value))
        assert all(g is not None and np.all(np.isfinite(np.asarray(g))) for g in grads)
        assert all(np.abs(np.asarray(g)).sum() > 0 for g in grads)
        after = [v.numpy() for v in model.trainable_variables]
        assert all(not np.allclose(a, b) for a, b in zip(after, before))

        # Log details
        episode_count += 1
        if episode_count % 10 == 0:
            template = "running reward: {:.2f} at episode {}"
            print(template.format(running_reward, episode_count))

        if running_reward > 195 or episode_count == 2:  # the example: running_reward > 195
            print("Solved at episode {}!".format(episode_count))
            break

    assert episode_count == 2 and all(np.isfinite(losses))
