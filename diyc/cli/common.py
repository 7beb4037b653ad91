"""What several commands share: the each-container loop with docker's
error shape, the prune confirmation, and --format (the listings' rows and
templates are the library's: diyc.listing)."""

import sys

from ..errors import ContainerNotFound, DiycError, InvalidArgument
from ..options import FLAG, VALUE, Option
from .registry import NotConfirmed


def filters_given(opts):
    """--filter KEY=VALUE (repeatable) -> {key: [values]}."""
    filters = {}
    for item in opts.get("filters", []):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"bad format of filter {item!r} (expected name=value)")
        filters.setdefault(key, []).append(value)
    return filters


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


def standard_input():
    """sys.stdin for a command that reads it; fd 0 closed (`<&-`: Python
    then has no sys.stdin) is the one-line error, not a traceback."""
    if sys.stdin is None:
        raise InvalidArgument("standard input is closed")
    return sys.stdin


def confirm(command, warning, opts):
    """docker's question before a prune: True to go ahead.  -f: no
    question.  Without a terminal on stdin nothing is asked nor removed
    (NotConfirmed, exit 1): a script gets no silent success, and a pipe's
    bytes are no consent."""
    if opts.get("force"):
        return True
    if sys.stdin is None or not sys.stdin.isatty():  # None: fd 0 closed
        raise NotConfirmed(command, "nothing removed: no terminal to confirm on (-f/--force removes "
                                    "without asking)")
    print(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


# -- --format ----------------------------------------------------------------

FORMAT = Option("--format", "format", VALUE, "string",
                "Format output: 'table', 'table TEMPLATE' (with headers), 'json' or a Go TEMPLATE")


def print_formatted(opts, rows, default, headers, quiet_format=None):
    """A listing as docker prints it: the rows (template_values.Contexts)
    through --format, or the default table, or -q's template."""
    from ..formatting import format_rows, resolve
    fmt = resolve(opts.get("format"), default, quiet_format, opts.get("quiet", False))
    sys.stdout.write(format_rows(fmt, rows, headers))
    return 0


INSPECT_FORMAT = Option("-f --format", "format", VALUE, "string",
                        "Format output using a Go template ('json': one line of JSON)")


def print_inspected(opts, values):
    """docker's inspect output: a JSON array (4-space indent), or each
    value through -f's template."""
    if opts.get("format"):
        from ..formatting import format_each
        sys.stdout.write(format_each(opts["format"], values))
    else:
        import json
        print(json.dumps(values, indent=4, ensure_ascii=False))
    return 0
