"""docker's KEY=VALUE files, as `--env-file` and `--label-file` read them
(moby's opts.ParseEnvFile): one entry a line; blank lines and lines
starting with `#` are skipped, leading whitespace is dropped; the value is
everything after the first `=`, quotes included (no shell unquoting); a
bare KEY takes the value from the caller's environment (an env file only:
and only if the caller has it), and a KEY with whitespace in it is an
error naming the file and line."""

from .errors import InvalidArgument

MAX_FILE_SIZE = 16 << 20  # a user's file, but read whole: a mistaken path to a disk image stops here
_WHITESPACE = " \t"


def read_entries(path, what, lookup=None):
    """The entries of the file at `path` (what: "--env-file") -> ["K=V"].
    lookup: {name: value} for the bare KEY lines (None: a bare KEY is
    kept as "K", as --label-file gives a label with an empty value)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_SIZE + 1)
    except OSError as e:
        raise InvalidArgument(f"{what} {path}: {e.strerror}") from None
    if len(data) > MAX_FILE_SIZE:
        raise InvalidArgument(f"{what} {path}: larger than {MAX_FILE_SIZE >> 20} MiB")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise InvalidArgument(f"{what} {path}: not UTF-8 text") from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.lstrip(_WHITESPACE)
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key:
            raise InvalidArgument(f"{what} {path}:{number}: no variable name")
        if any(c in key for c in _WHITESPACE) or "\0" in line:
            raise InvalidArgument(f"{what} {path}:{number}: invalid name {key!r} (whitespace or NUL in it)")
        if eq:
            out.append(f"{key}={value}")
        elif lookup is None:
            out.append(key)
        elif key in lookup:
            out.append(f"{key}={lookup[key]}")
    return out


def env_file_entries(paths, environ):
    """--env-file PATH (repeatable, in order) -> ["K=V"]."""
    out = []
    for path in paths or ():
        out += read_entries(path, "--env-file", lookup=environ)
    return out


def labels(image_labels, given, label_files):
    """The container's labels: the image's, then --label-file's, then
    --label's (each "K=V", or "K" for an empty value) -> {K: V}."""
    out = dict(image_labels or {})
    entries = []
    for path in label_files or ():
        entries += read_entries(path, "--label-file")
    for item in entries + list(given or ()):
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label {item!r}: expected KEY=VALUE")
        out[key] = value
    return out
