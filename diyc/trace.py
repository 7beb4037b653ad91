"""Phase timing of a container start: every phase of `diyc run` is timed,
and `--trace` / DIYC_TRACE=1 prints them."""

import sys
import time


class Trace:
    def __init__(self, enabled=False, start_ns=None):
        self.enabled = enabled
        self.start = self.last = start_ns or time.perf_counter_ns()
        self.phases = []

    def mark(self, phase):
        """Close the phase that ran since the previous mark."""
        now = time.perf_counter_ns()
        self.phases.append((phase, now - self.last))
        self.last = now

    def as_dict(self):
        return {name: ns / 1e6 for name, ns in self.phases}

    def report(self, file=None):
        if not self.enabled:
            return
        total = (self.last - self.start) / 1e6
        parts = " ".join(f"{name}={ns / 1e6:.2f}ms" for name, ns in self.phases)
        print(f"diyc: trace {parts} total={total:.2f}ms", file=file or sys.stderr)
