""".dockerignore: which files of a build context the build may see.

docker's rules (moby/patternmatcher): one pattern a line, `#` comments,
`!` re-includes; patterns are cleaned paths relative to the context root
(a leading `/` is dropped); `*` and `?` never match `/`, `**` matches any
number of directories, `[...]` classes and `\\` escapes as in Go's
filepath.Match.  A path is excluded when the last pattern that matches it
or one of its parent directories is not a `!` one.
"""

from .errors import InvalidArgument


def _clean(path):
    parts = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts) or "."


def compile_pattern(pattern):
    """A cleaned pattern -> compiled regex of the whole path."""
    import re  # here, not at the top: ~10 ms a build without patterns skips
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                    out.append("(?:.*/)?")  # zero or more directories
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern.startswith("[^", i) or pattern.startswith("[!", i) else i + 1)
            if end < 0:
                raise InvalidArgument(f".dockerignore: syntax error in pattern {pattern!r}")
            body = pattern[i + 1:end]
            if body[:1] in ("^", "!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return re.compile("".join(out))


class Matcher:
    def __init__(self, patterns):
        self.rules = []
        for raw in patterns:
            p = raw.strip()
            if not p or p.startswith("#"):
                continue
            exclude = p.startswith("!")
            if exclude:
                p = p[1:].strip()
            p = _clean(p.lstrip("/")) if p else ""
            if not p or p == ".":
                continue
            self.rules.append((compile_pattern(p), exclude))
        self.has_exceptions = any(ex for _, ex in self.rules)

    def excluded(self, rel):
        """Whether the context path `rel` (relative, '/'-separated) is left out."""
        if not self.rules:
            return False
        parts = rel.split("/")
        prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
        result = False
        for regex, exception in self.rules:
            if any(regex.match(p) for p in prefixes):
                result = not exception
        return result


def compile_component(pattern):
    """One path component's pattern (COPY sources) -> compiled regex."""
    return compile_pattern(pattern)


def load(text):
    """A .dockerignore's text -> Matcher."""
    return Matcher(text.splitlines())
