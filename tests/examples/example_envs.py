"""Tiny deterministic stand-ins for the `gym` environments the keras.io RL examples create.

`gym` is not a dependency and the tests run offline, so each class keeps the interface the
example calls (`reset`, `step`, `seed`, `observation_space`, `action_space`) and the shapes
and dtypes it returns, with simple dynamics and a short episode limit so a test runs in
seconds.
"""

from __future__ import annotations

import math

import numpy as np


class Box:
    """Like `gym.spaces.Box`: `shape`, `low`, `high`."""

    def __init__(self, low, high, shape):
        self.shape = tuple(shape)
        self.low = np.full(self.shape, low, np.float32)
        self.high = np.full(self.shape, high, np.float32)


class Discrete:
    """Like `gym.spaces.Discrete`: `n` and `sample()`."""

    def __init__(self, n, seed=0):
        self.n = n
        self._rng = np.random.default_rng(seed)

    def sample(self):
        return int(self._rng.integers(self.n))


class CartPole:
    """CartPole-v0's physics (Barto et al. 1983, Euler steps of 0.02 s): a 4-float state,
    actions 0/1 (push left/right), reward 1 per step, done when the pole falls past 12
    degrees, the cart leaves [-2.4, 2.4] or `max_steps` is reached. The old gym API:
    `reset()` returns the state, `step()` returns (state, reward, done, info)."""

    def __init__(self, max_steps=20, seed=0):
        self.max_steps = max_steps
        self.observation_space = Box(-np.inf, np.inf, (4,))
        self.action_space = Discrete(2, seed)
        self.seed(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)
        return [seed]

    def reset(self):
        self.state = self._rng.uniform(-0.05, 0.05, (4,))
        self.steps = 0
        return np.array(self.state, np.float32)

    def step(self, action):
        if action not in (0, 1):
            raise ValueError(f"CartPole.step: action must be 0 or 1, got {action!r}")
        x, x_dot, theta, theta_dot = self.state
        force = 10.0 if action == 1 else -10.0
        cos, sin = math.cos(theta), math.sin(theta)
        temp = (force + 0.05 * theta_dot**2 * sin) / 1.1
        theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos**2 / 1.1))
        x_acc = temp - 0.05 * theta_acc * cos / 1.1
        self.state = np.array([x + 0.02 * x_dot, x_dot + 0.02 * x_acc,
                               theta + 0.02 * theta_dot, theta_dot + 0.02 * theta_acc])
        self.steps += 1
        done = bool(abs(self.state[0]) > 2.4 or abs(self.state[2]) > 12 * math.pi / 180
                    or self.steps >= self.max_steps)
        return np.array(self.state, np.float32), 1.0, done, {}
