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


class Breakout:
    """A stand-in for `BreakoutNoFrameskip-v4` after gymnasium's `AtariPreprocessing`: 84x84
    uint8 grayscale frames showing a paddle (moved by actions 2/3: right/left) and a ball
    that bounces off the walls; reward 1 when the paddle is under the ball as it reaches the
    bottom, the episode ends after `max_steps` or a missed ball. The gymnasium API:
    `reset()` returns (frame, info), `step()` (frame, reward, terminated, truncated, info)."""

    def __init__(self, max_steps=40, size=84, seed=0):
        self.max_steps, self.size = max_steps, size
        self.action_space = Discrete(4, seed)
        self.observation_space = Box(0, 255, (size, size))
        self.seed(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)
        return [seed]

    def reset(self, seed=None):
        if seed is not None:
            self.seed(seed)
        n = self.size
        self.ball = np.array([1, self._rng.integers(1, n - 1)])
        self.velocity = np.array([1, 1 if self._rng.random() < 0.5 else -1])
        self.paddle, self.steps = n // 2, 0
        return self._frame(), {}

    def _frame(self):
        frame = np.zeros((self.size, self.size), np.uint8)
        frame[self.ball[0], self.ball[1]] = 255
        frame[-1, max(self.paddle - 4, 0):self.paddle + 4] = 200
        return frame

    def step(self, action):
        if action not in range(4):
            raise ValueError(f"Breakout.step: action must be in [0, 4), got {action!r}")
        n = self.size
        self.paddle = int(np.clip(self.paddle + {2: 2, 3: -2}.get(int(action), 0), 0, n - 1))
        self.ball = self.ball + self.velocity
        for axis in (0, 1):
            if self.ball[axis] <= 0 or self.ball[axis] >= n - 1:
                self.velocity[axis] *= -1
                self.ball[axis] = np.clip(self.ball[axis], 0, n - 1)
        reward, terminated = 0.0, False
        if self.ball[0] == n - 1:
            caught = abs(int(self.ball[1]) - self.paddle) <= 4
            reward, terminated = (1.0, False) if caught else (0.0, True)
        self.steps += 1
        truncated = self.steps >= self.max_steps
        return self._frame(), reward, terminated, truncated, {}


class AtariPreprocessing:
    """Stands for gymnasium's wrapper: the `Breakout` stand-in already yields its frames."""

    def __new__(cls, env):
        return env


class FrameStack:
    """Like gymnasium's `FrameStack(env, k)`: observations are the last k frames, (k, h, w)."""

    def __init__(self, env, num_stack):
        self.env, self.num_stack = env, num_stack
        self.action_space = env.action_space

    def seed(self, seed=None):
        return self.env.seed(seed)

    def reset(self, seed=None):
        frame, info = self.env.reset(seed)
        self.frames = [frame] * self.num_stack
        return np.stack(self.frames), info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        self.frames = self.frames[1:] + [frame]
        return np.stack(self.frames), reward, terminated, truncated, info


class Pendulum:
    """Pendulum-v0's dynamics (g = 10, m = l = 1, dt = 0.05, torque clipped to [-2, 2], speed
    to [-8, 8]): observations [cos, sin, angular velocity], reward -(angle^2 + 0.1 speed^2 +
    0.001 torque^2), done after `max_steps` (200 in gym). The old gym API."""

    def __init__(self, max_steps=200, seed=0):
        self.max_steps = max_steps
        self.observation_space = Box(-8.0, 8.0, (3,))
        self.action_space = Box(-2.0, 2.0, (1,))
        self.seed(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)
        return [seed]

    def reset(self):
        self.theta, self.speed = self._rng.uniform(-np.pi, np.pi), self._rng.uniform(-1, 1)
        self.steps = 0
        return self._observation()

    def _observation(self):
        return np.array([math.cos(self.theta), math.sin(self.theta), self.speed])

    def step(self, action):
        torque = float(np.clip(np.asarray(action, np.float64).reshape(-1)[0], -2.0, 2.0))
        angle = (self.theta + np.pi) % (2 * np.pi) - np.pi
        reward = -(angle**2 + 0.1 * self.speed**2 + 0.001 * torque**2)
        self.speed = float(np.clip(
            self.speed + (3 * 10.0 / 2 * math.sin(self.theta) + 3.0 * torque) * 0.05, -8, 8))
        self.theta += self.speed * 0.05
        self.steps += 1
        return self._observation(), reward, self.steps >= self.max_steps, {}


def make(name, **kwargs):
    """Like `gym.make` for the environments above."""
    envs = {"CartPole-v0": CartPole, "CartPole-v1": CartPole, "BreakoutNoFrameskip-v4": Breakout,
            "Pendulum-v0": Pendulum, "Pendulum-v1": Pendulum}
    if name not in envs:
        raise ValueError(f"make: no stand-in for environment {name!r}; have {sorted(envs)}")
    return envs[name](**kwargs)
