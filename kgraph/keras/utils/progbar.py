"""Keras 3's progress bar, byte for byte (keras-formats.md §6)."""
from __future__ import annotations

import os
import sys
import time

import numpy as np


def _dynamic_display(stream) -> bool:
    return ((hasattr(stream, "isatty") and stream.isatty()) or "ipykernel" in sys.modules
            or "posix" in sys.modules or "PYCHARM_HOSTED" in os.environ)


def _bold(s):
    return f"\x1b[1m{s}\x1b[0m"


def format_value(v) -> str:
    v = float(np.mean(v))
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


class Progbar:
    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None,
                 unit_name="step", stream=None):
        self.target, self.width, self.verbose = target, width, verbose
        self.interval, self.unit_name = interval, unit_name
        self.stream = stream or sys.stdout
        self._dynamic = _dynamic_display(self.stream)
        self._values: dict = {}
        self._seen_so_far = 0
        self._total_width = 0
        self._start = time.time()
        self._last_update = 0.0
        self._time_at_epoch_start = self._start
        self._time_after_first_step = None

    def update(self, current, values=None, finalize=None):
        finalize = (self.target is not None and current >= self.target) if finalize is None \
            else finalize
        for k, v in values or []:
            self._values[k] = v
        self._seen_so_far = current
        now = time.time()
        if self._time_after_first_step is None and current >= 1:
            self._time_after_first_step = now
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            self._write(self._line(current, now, finalize), finalize)
            self._last_update = now
        elif self.verbose == 2 and finalize:
            self._write(self._line2(current, now) + "\n", True, plain=True)

    def _line(self, current, now, finalize):
        prev = self._total_width
        prefix = ("\b" * prev + "\r") if self._dynamic else "\n"
        if self.target is not None:
            digits = int(np.log10(self.target)) + 1 if self.target > 0 else 1
            count = f"%{digits}d/%d" % (current, self.target)
            filled = int(self.width * current / self.target) if self.target else self.width
            bar = (f"{_bold(count)} \x1b[32m{'━' * filled}\x1b[0m"
                   f"\x1b[37m{'━' * (self.width - filled)}\x1b[0m")
        else:
            bar = "%7d/Unknown" % current
        elapsed = now - self._start
        if finalize:
            info = f" {_bold(f'{elapsed:.0f}s')}"
        else:
            info = f" {_bold(self._eta(current, now))}"
        info += self._per_step(current, now)
        for k, v in self._values.items():
            info += f" - {k}: {format_value(v)}"
        line = bar + info
        width = len(line)
        if width < prev:
            line += " " * (prev - width)
        self._total_width = width
        return prefix + line + ("\n" if finalize else "")

    def _eta(self, current, now):
        per = self._time_per_unit(current, now)
        if self.target is None or per is None:
            return "0s"
        eta = per * (self.target - current)
        if eta > 3600:
            return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
        if eta > 60:
            return "%d:%02d" % (eta // 60, eta % 60)
        return "%ds" % eta

    def _time_per_unit(self, current, now):
        if current <= 1 or self._time_after_first_step is None:
            return (now - self._start) / current if current else None
        return (now - self._time_after_first_step) / (current - 1)

    def _per_step(self, current, now):
        per = self._time_per_unit(current, now)
        if per is None:
            return ""
        if per >= 1:
            return f" {per:.0f}s/{self.unit_name}"
        if per >= 1e-3:
            return f" {per * 1e3:.0f}ms/{self.unit_name}"
        return f" {per * 1e6:.0f}us/{self.unit_name}"

    def _line2(self, current, now):
        line = f"{current}/{self.target}" if self.target is not None else f"{current}"
        line += f" - {now - self._start:.0f}s"
        per = self._per_step(current, now)
        if per:
            line += " -" + per
        for k, v in self._values.items():
            line += f" - {k}: {format_value(v)}"
        return line

    def _write(self, text, finalize, plain=False):
        from kgraph.keras.utils import global_state

        if self.stream is sys.stdout and not global_state.is_interactive_logging_enabled():
            if text.strip("\r\n\b "):
                global_state.print_msg(text.strip("\r\n\b "))  # to the `keras` logger
            return
        self.stream.write(text)
        self.stream.flush()
