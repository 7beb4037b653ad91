"""What several commands share: argument checks, the each-container loop
with docker's error shape, the prune confirmation, and the text columns
(sizes, "5 minutes ago", status) of the listings."""

import sys
import time

from ..errors import ContainerNotFound, DiycError, InvalidArgument
from ..options import FLAG, Option
from .registry import NotConfirmed


def no_arguments(command, positional):
    if positional:
        raise InvalidArgument(f'"diyc {command}" accepts no arguments (got {positional[0]!r})')


def each_container(root, refs, action, verb, echo_ref=False):
    """Apply action(container) to each ref, as docker does: a failure is
    reported (one line, `diyc: VERB REF: reason`) and the others are still
    done; the exit code is 1 if any failed.  echo_ref: print each ref
    done (as `docker rm` does)."""
    from ..runtime import Container
    if not refs:
        raise InvalidArgument(f'"diyc {verb}" requires at least one container')
    code = 0
    for ref in refs:
        try:
            action(Container.load(ref, root))
            if echo_ref:
                print(ref)
        except ContainerNotFound as e:  # as every command says it: `diyc: no such container: x`
            print(f"diyc: {e}", file=sys.stderr)
            code = 1
        except (DiycError, OSError) as e:
            print(f"diyc: {verb} {ref}: {reason(e)}", file=sys.stderr)
            code = 1
    return code


def reason(e):
    """An exception as the end of a one-line message."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e)


# -- prunes ------------------------------------------------------------------

FORCE = Option("-f --force", "force", FLAG, help="Do not prompt for confirmation")


def confirm(command, warning, opts):
    """docker's question before a prune: True to go ahead.  -f: no
    question.  Without a terminal on stdin nothing is asked nor removed
    (NotConfirmed, exit 1): a script gets no silent success, and a pipe's
    bytes are no consent."""
    if opts.get("force"):
        return True
    if not sys.stdin.isatty():
        raise NotConfirmed(command, "nothing removed: no terminal to confirm on (-f/--force removes "
                                    "without asking)")
    print(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


# -- formatting -------------------------------------------------------------

def human_size(n):
    if n is None:
        return "unlimited"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)


def ago(t):
    secs = max(0, time.time() - t)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = int(secs // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return f"{int(secs)} seconds ago"


def status_text(c):
    status = c.status
    state = c.record["state"]
    if status == "running":
        return "Up " + ago(state.get("started", c.record["created"]))[:-4]
    if status == "exited":
        return f"Exited ({state.get('exit_code')}) {ago(state.get('finished', c.record['created']))}"
    if status == "dead":
        return "Dead (its diyc process is gone)"
    return status.capitalize()


def quote_cmd(args):
    s = " ".join(args)
    return f'"{s[:20]}…"' if len(s) > 20 else f'"{s}"'


def ports_text(c):
    ports = (c.record.get("network_settings") or {}).get("ports") or []
    return ", ".join(f"{p.get('host_ip', '0.0.0.0')}:{p['host_port']}->{p['container_port']}/{p['proto']}"
                     for p in ports if isinstance(p, dict) and "host_port" in p)
