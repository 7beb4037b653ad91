"""How `diyc build` shows its steps, and `diyc history`.

Plain output: one line per step when it ends (`[2/6] RUN make  1.52s` or
`CACHED`); a step's output is shown as it comes, under a header line.  On a
terminal the running step's line is redrawn in place with its elapsed time
(the builder sends a `tick` event while a RUN is silent).
"""

import time


class Printer:
    """A progress callback for diyc.build (a callable taking event dicts)."""

    def __init__(self, out, quiet=False, tty=False):
        self.out, self.quiet, self.tty = out, quiet, tty
        self.current = None
        self.header_shown = False
        self.pending_line = False

    def _write(self, text):
        self.out.write(text)
        self.out.flush()

    def _clear(self):
        if self.pending_line:
            self._write("\r\x1b[K")
            self.pending_line = False

    def __call__(self, event):
        kind = event["event"]
        if kind == "warning":
            self._clear()
            self._write(f"WARNING: {event['message']}\n")
            return
        if self.quiet:
            return
        if kind == "step":
            self.current = f"[{event['step']}/{event['total']}] {event['instruction']}"
            self.header_shown = False
            self.started = time.monotonic()
            if self.tty:
                self._write(f"{self.current[:200]} ...")
                self.pending_line = True
        elif kind == "tick":
            if self.tty and not self.header_shown:
                self._clear()
                self._write(f"{self.current[:200]}  {event['seconds']:.1f}s")
                self.pending_line = True
        elif kind == "output":
            self._clear()
            if not self.header_shown:
                self._write(f"{self.current}\n")
                self.header_shown = True
            self._write(f"  {event['line']}\n")
        elif kind == "done":
            self._clear()
            state = "CACHED" if event["cached"] else f"{event['seconds']:.2f}s"
            self._write(f"{self.current}  {state}\n")
        elif kind == "image":
            names = "".join(f"\nSuccessfully tagged {t}" for t in event["tags"])
            self._write(f"Successfully built {event['id'][7:19]}{names}\n")
