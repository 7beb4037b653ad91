"""Dockerfile parsing: directives, comments, line continuations, heredocs,
exec/shell forms and flags; and docker's variable substitution.

Pure functions over text, no I/O.  `parse()` returns a Dockerfile whose
instructions keep their raw arguments; substitution (`expand`, `expand_words`,
`key_values`) happens while building, when the variables are known.  Errors
are one line naming the file and line: `Dockerfile:7: unknown instruction: FOO`.
"""

from . import _json

from .errors import InvalidArgument

INSTRUCTIONS = ("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT",
                "EXPOSE", "LABEL", "VOLUME", "SHELL", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD",
                "MAINTAINER")
# instructions whose arguments get variable substitution (docker's list)
EXPANDED = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
            "WORKDIR", "ARG"}
HEREDOC_INSTRUCTIONS = {"RUN", "COPY", "ADD"}
FLAGS = {"FROM": {"platform"}, "RUN": {"network", "mount", "security"},
         "COPY": {"from", "chown", "chmod", "link", "parents", "exclude"},
         "ADD": {"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"},
         "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"}}


class DockerfileError(InvalidArgument):
    pass


class Instruction:
    """One instruction.  `args`: the text after the keyword and its flags
    (continuations joined); `json`: the list of the exec form, else None;
    `heredocs`: [(name, content, expand)]; `line`: where it starts."""

    def __init__(self, cmd, args, line, flags, heredocs, original, filename):
        self.cmd, self.args, self.line, self.flags = cmd, args, line, flags
        self.heredocs, self.original, self.filename = heredocs, original, filename
        self.json = exec_form(args) if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY",
                                                "ADD", "VOLUME", "HEALTHCHECK") else None

    def error(self, message):
        return DockerfileError(f"{self.filename}:{self.line}: {message}")

    def __repr__(self):
        return f"Instruction({self.original!r} at {self.line})"


class Dockerfile:
    def __init__(self, directives, instructions, escape):
        self.directives, self.instructions, self.escape = directives, instructions, escape


def exec_form(text):
    """The list of a JSON (exec) form, or None for the shell form."""
    text = text.strip()
    if not text.startswith("["):
        return None
    try:
        value = _json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _directives(lines):
    """The `# key=value` parser directives at the top; -> (dict, lines used)."""
    found = {}
    used = 0
    for line in lines:
        s = line.strip()
        if not s.startswith("#"):
            break
        key, eq, value = s[1:].strip().partition("=")
        key = key.strip().lower()
        if not eq or not key or " " in key or key not in ("syntax", "escape", "check"):
            break
        if key in found:
            break
        found[key] = value.strip()
        used += 1
    return found, used


def parse(text, filename="Dockerfile"):
    """A Dockerfile's text -> Dockerfile, or DockerfileError."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DockerfileError(f"{filename}: not UTF-8 text") from None
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    directives, first = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"{filename}:{first}: invalid escape token {escape!r}: must be \\ or `")
    instructions = []
    i = first
    n = len(lines)
    while i < n:
        start = i
        stripped = lines[i].strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        # join continuation lines: a line ending in the escape char goes on
        logical = ""
        current = lines[start].lstrip()
        while True:
            body = current.rstrip()
            if body.endswith(escape):
                logical += body[:-1]
                # the next non-comment, non-empty line continues it
                while i < n and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1
                if i >= n:
                    break
                current = lines[i]
                i += 1
                continue
            logical += current
            break
        keyword, _, rest = logical.strip().partition(" ")
        if "\t" in keyword:
            keyword, _, more = keyword.partition("\t")
            rest = more + " " + rest
        cmd = keyword.upper()
        line_no = start + 1
        if cmd not in INSTRUCTIONS:
            raise DockerfileError(f"{filename}:{line_no}: unknown instruction: {keyword}")
        rest = rest.strip()
        flags = {}
        if cmd in FLAGS:
            rest, flags = _flags(rest, cmd, filename, line_no)
        heredocs = []
        if cmd in HEREDOC_INSTRUCTIONS and "<<" in rest and exec_form(rest) is None:
            names = _heredoc_names(rest)
            for name, strip_tabs, expand in names:
                content = []
                while True:
                    if i >= n:
                        raise DockerfileError(f"{filename}:{line_no}: unterminated heredoc <<{name}")
                    ln = lines[i]
                    i += 1
                    check = ln.lstrip("\t") if strip_tabs else ln
                    if check == name:
                        break
                    content.append(check)
                heredocs.append((name, "\n".join(content) + "\n", expand))
        if cmd == "ONBUILD":
            trigger = rest.split(None, 1)[0].upper() if rest else ""
            if trigger in ("ONBUILD", "FROM", "MAINTAINER") or trigger not in INSTRUCTIONS:
                raise DockerfileError(f"{filename}:{line_no}: invalid ONBUILD trigger: {rest or '(none)'}")
        if not rest and not heredocs and cmd not in ("RUN", "CMD", "ENTRYPOINT"):
            raise DockerfileError(f"{filename}:{line_no}: {cmd} requires at least one argument")
        original = f"{cmd} {logical.strip()[len(keyword):].strip()}".strip()
        instructions.append(Instruction(cmd, rest, line_no, flags, heredocs, original, filename))
    for ins in instructions:
        if ins.cmd == "FROM":
            break
        if ins.cmd != "ARG":
            raise DockerfileError(f"{filename}:{ins.line}: {ins.cmd} before the first FROM "
                                  "(only ARG may come first)")
    if not any(ins.cmd == "FROM" for ins in instructions):
        raise DockerfileError(f"{filename}: no FROM instruction")
    return Dockerfile(directives, instructions, escape)


def _flags(rest, cmd, filename, line_no):
    flags = {}
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        name, eq, value = word[2:].partition("=")
        if name not in FLAGS[cmd]:
            raise DockerfileError(f"{filename}:{line_no}: unknown flag for {cmd}: --{name}")
        if name in ("link", "parents", "keep-git-dir") and not eq:
            value = "true"
        elif not eq:
            raise DockerfileError(f"{filename}:{line_no}: flag --{name} needs a value (--{name}=VALUE)")
        if name in ("mount", "exclude"):
            flags.setdefault(name, []).append(value)
        else:
            flags[name] = value
        rest = after.lstrip()
    return rest, flags


def _heredoc_names(text):
    """[(name, strip_tabs, expand)] for each `<<NAME`, `<<-NAME`, `<<"NAME"`
    outside quotes."""
    out = []
    i, n = 0, len(text)
    quote = None
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "'\"":
            quote = c
            i += 1
            continue
        if text.startswith("<<", i) and not text.startswith("<<<", i):
            j = i + 2
            strip = j < n and text[j] == "-"
            if strip:
                j += 1
            q = text[j] if j < n and text[j] in "'\"" else None
            if q:
                end = text.find(q, j + 1)
                if end < 0:
                    break
                name, j = text[j + 1:end], end + 1
            else:
                k = j
                while k < n and (text[k].isalnum() or text[k] in "_-."):
                    k += 1
                name, j = text[j:k], k
            if name:
                out.append((name, strip, q is None))
            i = j
            continue
        i += 1
    return out


# -- variable substitution --------------------------------------------------

class _Lexer:
    """docker's shell-word rules: quotes, the escape char, $VAR, ${VAR},
    ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}, ${VAR:?message}.
    `used` collects the names looked up (for the build cache)."""

    def __init__(self, text, env, escape="\\", used=None, quotes=True):
        self.s, self.i, self.env, self.escape, self.quotes = text, 0, env, escape, quotes
        self.used = used if used is not None else set()

    def words(self, split):
        words, cur, have = [], [], False
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if split and c in " \t\n":
                if have:
                    words.append("".join(cur))
                    cur, have = [], False
                self.i += 1
                continue
            if c == "$":
                value = self.variable()
                if not split:
                    cur.append(value)
                    have = True
                    continue
                for ch in value:  # an unquoted expansion splits into words
                    if ch in " \t\n":
                        if have:
                            words.append("".join(cur))
                            cur, have = [], False
                    else:
                        cur.append(ch)
                        have = True
                continue
            have = True
            if c == self.escape:
                self.i += 1
                if self.i < len(s):
                    cur.append(s[self.i])
                    self.i += 1
                elif self.escape == "`":
                    cur.append(c)
                continue
            if c == "'" and self.quotes:
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise DockerfileError("unexpected end of statement while looking for matching single-quote")
                cur.append(s[self.i + 1:end])
                self.i = end + 1
                continue
            if c == '"' and self.quotes:
                self.i += 1
                cur.append(self.double_quoted())
                continue
            cur.append(c)
            self.i += 1
        if have:
            words.append("".join(cur))
        return words

    def double_quoted(self):
        return self.expanded_until('"', "unexpected end of statement while looking for matching double-quote",
                                   escapable='"$' + self.escape)

    def variable(self):
        s = self.s
        self.i += 1  # the $
        if self.i >= len(s):
            return "$"
        c = s[self.i]
        if c == "{":
            self.i += 1
            start = self.i
            while self.i < len(s) and (s[self.i].isalnum() or s[self.i] == "_"):
                self.i += 1
            name = s[start:self.i]
            if not name or self.i >= len(s):
                raise DockerfileError(f"bad substitution: ${{{s[start:]}")
            op = s[self.i]
            if op == "}":
                self.i += 1
                return self.lookup(name) or ""
            if op == ":" and self.i + 1 < len(s) and s[self.i + 1] in "-+?":
                op = s[self.i:self.i + 2]
                self.i += 2
            elif op in "-+?":
                self.i += 1
            else:
                raise DockerfileError(f"unsupported modifier ({op}) in substitution ${{{name}{op}...}}")
            word = self.nested_word()
            value = self.lookup(name)
            if op in (":-", "-"):
                unset = value is None or (op == ":-" and value == "")
                return word if unset else value
            if op in (":+", "+"):
                set_ = value is not None and (op == "+" or value != "")
                return word if set_ else ""
            if value is None or (op == ":?" and value == ""):
                raise DockerfileError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if c.isalpha() or c == "_":
            start = self.i
            while self.i < len(s) and (s[self.i].isalnum() or s[self.i] == "_"):
                self.i += 1
            return self.lookup(s[start:self.i]) or ""
        return "$"

    def nested_word(self):
        """The word of ${VAR:-word} up to the matching }, itself expanded."""
        return self.expanded_until("}", "missing '}' in substitution", quotes=True)

    def expanded_until(self, close, missing, escapable=None, quotes=False):
        """The text up to `close` (consumed; DockerfileError `missing`
        without it), variables expanded, the escape removed before any
        character (before those of `escapable` only, if given); quotes:
        quoted parts too ('...' as it is, "..." expanded)."""
        out = []
        s = self.s
        while True:
            if self.i >= len(s):
                raise DockerfileError(missing)
            c = s[self.i]
            if c == close:
                self.i += 1
                return "".join(out)
            if c == self.escape and self.i + 1 < len(s) and (escapable is None or s[self.i + 1] in escapable):
                out.append(s[self.i + 1])
                self.i += 2
                continue
            if c == "$":
                out.append(self.variable())
                continue
            if quotes and c in "'\"":
                end = s.find(c, self.i + 1)
                if end < 0:
                    raise DockerfileError("missing '}' in substitution")
                inner = s[self.i + 1:end]
                out.append(inner if c == "'" else _Lexer(inner, self.env, self.escape, self.used).words(False)[0]
                           if inner else "")
                self.i = end + 1
                continue
            out.append(c)
            self.i += 1

    def lookup(self, name):
        self.used.add(name)
        return self.env.get(name)


def expand(text, env, escape="\\", used=None):
    """One word: variables substituted, quotes and escapes removed."""
    words = _Lexer(text, env, escape, used).words(False)
    return words[0] if words else ""


def expand_vars(text, env, escape="\\", used=None):
    """Variables substituted, quotes kept (a heredoc's body)."""
    words = _Lexer(text, env, escape, used, quotes=False).words(False)
    return words[0] if words else ""


def expand_words(text, env, escape="\\", used=None):
    """Whitespace-separated words, each substituted (COPY sources, EXPOSE...)."""
    return _Lexer(text, env, escape, used).words(True)


def raw_words(text, escape="\\"):
    """Split on unquoted whitespace, keeping quotes and escapes (for
    KEY=VALUE lists whose values are substituted one by one)."""
    words, cur, quote, i = [], [], None, 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == escape and quote == '"' and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c == escape and i + 1 < len(text):
            cur += [c, text[i + 1]]
            i += 1
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c in " \t\n":
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if quote:
        raise DockerfileError(f"unterminated {quote} quote")
    if cur:
        words.append("".join(cur))
    return words


def key_values(ins, env, escape="\\", used=None, legacy=True):
    """ENV/LABEL arguments -> [(key, value)], docker's rules: `K=V K2="V 2"`,
    or the legacy `K V with spaces` (one pair) when the first word has no =."""
    words = raw_words(ins.args, escape)
    if not words:
        raise ins.error(f"{ins.cmd} requires at least one argument")
    if "=" not in words[0]:
        if not legacy:
            raise ins.error(f"{ins.cmd} names must be KEY=VALUE: {words[0]}")
        key, _, value = ins.args.strip().partition(" ")
        if not value.strip():
            raise ins.error(f"{ins.cmd} {key} needs a value (or use {key}=VALUE)")
        return [(expand(key, env, escape, used), expand(value.strip(), env, escape, used))]
    pairs = []
    for w in words:
        if "=" not in w:
            raise ins.error(f"{ins.cmd} names must be KEY=VALUE: {w}")
        k, _, v = w.partition("=")
        key = expand(k, env, escape, used)
        if not key:
            raise ins.error(f"{ins.cmd} names can not be blank")
        pairs.append((key, expand(v, env, escape, used)))
    return pairs


def parse_duration(text):
    """Go durations (`30s`, `1m30s`, `500ms`) -> nanoseconds."""
    from .numbers import duration_ns
    try:
        return duration_ns(text.strip(), "duration")
    except InvalidArgument:
        raise DockerfileError(f"invalid duration {text!r}") from None
