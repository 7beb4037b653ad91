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


def _human_size(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n}"


def history_rows(store, ref, no_trunc=False):
    """(image, created, created by, size, comment) per history entry, newest first."""
    record = store.resolve(ref)
    config = record["config"]
    layers = list(record["layers"])
    history = list(config.get("history") or [])
    if sum(1 for h in history if not h.get("empty_layer")) != len(layers):
        history = [{"created": config.get("created", ""), "created_by": ""} for _ in layers]
    rows = []
    layer_index = 0
    for h in history:
        size = 0
        if not h.get("empty_layer"):
            size = store.layer_size(layers[layer_index])
            layer_index += 1
        by = h.get("created_by", "")
        if not no_trunc and len(by) > 45:
            by = by[:44] + "…"
        rows.append(["<missing>", h.get("created", "")[:19].replace("T", " "), by, _human_size(size),
                     h.get("comment", "")])
    rows.reverse()
    if rows:
        rows[0][0] = record["id"] if no_trunc else record["id"][7:19]
    return rows
