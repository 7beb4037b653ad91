"""Go's text/template, the subset docker users type in `--format`:

    {{.Names}} {{.State.Pid}} {{$}} {{$v := .X}} {{$v}}
    {{json .}} {{index .Config.Labels "k"}} {{.Label "k"}} {{printf "%s" .X}}
    {{if .A}}..{{else if .B}}..{{else}}..{{end}}   {{with .A}}..{{end}}
    {{range .Mounts}}..{{else}}..{{end}}   {{range $i, $m := .Mounts}}
    {{- trimmed -}}  {{/* comments */}}  (sub pipelines) | pipes
    and or not len index slice eq ne lt le gt ge print printf println
    and docker's: json split join title lower upper pad truncate

parse(text) -> Template; Template.execute(data) -> str.  Data is Python
values: a dict is a Go struct (an unknown field is an error, as for
docker's typed contexts), a Map (dict subclass) a Go map (a missing key is
`<no value>`), a Context a formatter's row (fields computed on use,
methods with arguments).  Every error is a TemplateError (an
InvalidArgument: one line `diyc: template: ...`, exit 125)."""

from .template_values import (FUNCTIONS, NO_VALUE, Context, Map, Method, TemplateError, go_str,
                              go_type_name, truth)

__all__ = ["parse", "Template", "TemplateError", "Map", "Context", "Method", "NO_VALUE"]

_KEYWORDS = ("if", "else", "end", "range", "with", "break", "continue")


# -- lexing: text and actions, then the tokens of an action ---------------------

def _split(text):
    """-> [("text", str, pos) | ("action", body, pos)], trim markers applied."""
    out, i = [], 0
    while True:
        start = text.find("{{", i)
        if start < 0:
            out.append(("text", text[i:], i))
            return out
        body_start = start + 2
        literal = text[i:start]
        if text.startswith("- ", body_start) or text.startswith("-\t", body_start) \
                or text.startswith("-\n", body_start):
            literal = literal.rstrip()
            body_start += 1
        out.append(("text", literal, i))
        end = _action_end(text, body_start, start)
        body = text[body_start:end]
        i = end + 2
        if body.endswith((" -", "\t-", "\n-")):
            body = body[:-1]
            while i < len(text) and text[i] in " \t\r\n":
                i += 1
        out.append(("action", body, start))


def _action_end(text, i, start):
    """The index of the `}}` closing the action at `start` (not one inside a string)."""
    quote = None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
            elif c == "\n" and quote == '"':
                raise _parse_error(text, start, "unterminated quoted string")
        elif c in "\"`'":
            quote = c
        elif text.startswith("}}", i):
            return i
        i += 1
    raise _parse_error(text, start, "unterminated quoted string" if quote else "unclosed action")


def _parse_error(text, pos, message):
    return TemplateError(f"template: :{text.count(chr(10), 0, pos) + 1}: {message}")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0",
            "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _tokens(body, fail):
    """An action's tokens: (kind, value), kinds str num name field var pipe ( ) := = ,"""
    out, i, n = [], 0, len(body)
    while i < n:
        c = body[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':
            value, i = _quoted(body, i + 1, fail)
            out.append(("str", value))
        elif c == "`":
            end = body.find("`", i + 1)
            out.append(("str", body[i + 1:end]))
            i = end + 1
        elif c == ")" and body[i + 1:i + 2] == "." and body[i + 2:i + 3].isalpha():
            j = _word_end(body, i + 2, ".")
            out.append((")", ")"))
            out.append(("chain", [p for p in body[i + 2:j].split(".") if p]))
            i = j
        elif c in "|(),":
            out.append(("pipe" if c == "|" else c, c))
            i += 1
        elif body.startswith(":=", i):
            out.append((":=", ":="))
            i += 2
        elif c == "=":
            out.append(("=", "="))
            i += 1
        elif c == "." and (i + 1 == n or not body[i + 1].isdigit()):
            j = _word_end(body, i + 1, ".")
            out.append(("field", [p for p in body[i + 1:j].split(".") if p] if j > i + 1 else []))
            if j > i + 1 and (body[i + 1:j].endswith(".") or ".." in body[i:j]):
                fail(f"bad field {body[i:j]!r}")
            i = j
        elif c == "$":
            j = _word_end(body, i + 1, ".")
            name, *chain = body[i:j].split(".")
            out.append(("var", (name, chain)))
            i = j
        elif c.isdigit() or (c in "+-." and i + 1 < n and body[i + 1].isdigit()):
            j = _word_end(body, i + 1, ".+-xXoObBeE_")
            out.append(("num", _number(body[i:j], fail)))
            i = j
        elif c.isalpha() or c == "_":
            j = _word_end(body, i, "")
            out.append(("name", body[i:j]))
            if j < n and body[j] == ".":  # (a sub-pipeline's result, then its fields)
                fail(f"unexpected {body[j:j + 2]!r} after {body[i:j]!r}")
            i = j
        else:
            fail(f"unexpected {c!r} in command")
    return out


def _word_end(body, i, extra):
    while i < len(body) and (body[i].isalnum() or body[i] == "_" or body[i] in extra):
        i += 1
    return i


def _quoted(body, i, fail):
    out = []
    while i < len(body):
        c = body[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            nxt = body[i + 1:i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt in ("x", "u", "U"):
                width = {"x": 2, "u": 4, "U": 8}[nxt]
                try:
                    out.append(chr(int(body[i + 2:i + 2 + width], 16)))
                except ValueError:
                    fail("bad escape in quoted string")
                i += 2 + width
                continue
            fail(f"unknown escape sequence \\{nxt}")
        out.append(c)
        i += 1
    fail("unterminated quoted string")


def _number(text, fail):
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            fail(f"bad number syntax: {text!r}")


# -- parsing: a tree of nodes ---------------------------------------------------------

class _Pipeline:
    """`$a, $b := cmd arg | cmd arg`: variables declared (or assigned), commands."""

    def __init__(self, variables, assign, commands, pos, text):
        self.variables, self.assign, self.commands, self.pos, self.text = \
            variables, assign, commands, pos, text


class _Parser:
    def __init__(self, text):
        self.text = text
        self.items = _split(text)
        self.i = 0

    def fail(self, pos, message):
        raise _parse_error(self.text, pos, message)

    def parse_list(self, ends=()):
        """Nodes up to one of `ends` (an {{else}} or {{end}}): -> (nodes, the end keyword, its tokens)."""
        nodes = []
        while self.i < len(self.items):
            kind, body, pos = self.items[self.i]
            self.i += 1
            if kind == "text":
                if body:
                    nodes.append(("text", body))
                continue
            stripped = body.strip()
            if stripped.startswith("/*"):
                if not stripped.endswith("*/"):
                    self.fail(pos, "unclosed comment")
                continue
            tokens = _tokens(body, lambda m, pos=pos: self.fail(pos, m))
            if not tokens:
                self.fail(pos, "missing value for command")
            word = tokens[0][1] if tokens[0][0] == "name" else None
            if word in ("end", "else"):
                if word not in ends:
                    self.fail(pos, f"unexpected {{{{{word}}}}}")
                return nodes, word, tokens[1:], pos
            if word in ("if", "range", "with"):
                nodes.append(self.parse_block(word, tokens[1:], pos, body))
            elif word in ("break", "continue"):
                nodes.append((word, pos))
            elif word in ("define", "template", "block"):
                self.fail(pos, f"{{{{{word}}}}} is not supported")
            else:
                nodes.append(("action", self.pipeline(tokens, pos, body)))
        if ends:
            self.fail(len(self.text), "unexpected EOF")
        return nodes, None, None, None

    def parse_block(self, word, tokens, pos, body):
        """if/range/with PIPELINE ... [{{else [if|with ...]}} ...] {{end}}"""
        if not tokens:
            self.fail(pos, f"missing value for {word}")
        pipe = self.pipeline(tokens, pos, body, declare_ok=True)
        nodes, end, rest, end_pos = self.parse_list(("end", "else"))
        otherwise = []
        if end == "else":
            if rest and rest[0] == ("name", word) and word in ("if", "with"):
                # {{else if X}}: an if in the else branch that shares our {{end}}
                otherwise = [self.parse_block(word, rest[1:], end_pos, body)]
            elif rest:
                self.fail(end_pos, "unexpected tokens after {{else}}")
            else:
                otherwise, end, _, _ = self.parse_list(("end",))
        return (word, pipe, nodes, otherwise, pos)

    def pipeline(self, tokens, pos, body, declare_ok=True):
        variables, assign = [], None
        decl_end = next((k for k, t in enumerate(tokens) if t[0] in (":=", "=")), None)
        if decl_end is not None and all(t[0] in ("var", ",") for t in tokens[:decl_end]):
            variables = [t[1][0] for t in tokens[:decl_end] if t[0] == "var"]
            if not variables or len(variables) > 2 or any(t[1][1] for t in tokens[:decl_end] if t[0] == "var"):
                self.fail(pos, "bad variable declaration")
            assign = tokens[decl_end][0] == "="
            tokens = tokens[decl_end + 1:]
        commands, current, depth, group = [], [], 0, []
        for tok in tokens:
            if depth:
                if tok[0] == "(":
                    depth += 1
                elif tok[0] == ")":
                    depth -= 1
                    if not depth:
                        current.append(("sub", (self.pipeline(group, pos, body), [])))
                        group = []
                        continue
                group.append(tok)
            elif tok[0] == "(":
                depth = 1
            elif tok[0] == ")":
                self.fail(pos, "unexpected right paren")
            elif tok[0] == "chain":
                current[-1] = ("sub", (current[-1][1][0], tok[1]))
            elif tok[0] == "pipe":
                if not current:
                    self.fail(pos, "missing command before |")
                commands.append(current)
                current = []
            elif tok[0] in (":=", "=", ","):
                self.fail(pos, f"unexpected {tok[1]!r} in command")
            else:
                if tok[0] == "name" and tok[1] not in ("true", "false", "nil") and tok[1] not in FUNCTIONS:
                    self.fail(pos, f'function "{tok[1]}" not defined')
                current.append(tok)
        if depth:
            self.fail(pos, "unclosed left paren")
        if not current:
            self.fail(pos, "missing value for command")
        commands.append(current)
        return _Pipeline(variables, assign, commands, pos, body.strip())


def parse(text):
    """A Template for `text` (TemplateError on bad syntax)."""
    if not isinstance(text, str):
        raise TemplateError(f"template: not a string: {text!r}")
    try:
        nodes, _, _, _ = _Parser(text).parse_list()
    except RecursionError:
        raise TemplateError("template: nested too deeply") from None
    return Template(text, nodes)


# -- execution ------------------------------------------------------------------------

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    def __init__(self, text, nodes):
        self.text, self.nodes = text, nodes

    def execute(self, data, functions=None):
        """The text for `data`.  functions: {name: callable} replacing
        the standard ones (docker's header functions)."""
        out = []
        state = _State(self.text, data, dict(FUNCTIONS, **(functions or {})))
        try:
            state.run(self.nodes, data, out)
        except RecursionError:
            raise TemplateError("template: nested too deeply") from None
        return "".join(out)


class _State:
    def __init__(self, text, root, functions):
        self.text, self.functions = text, functions
        self.scopes = [{"$": root}]

    def error(self, pipe, message):
        line = self.text.count("\n", 0, pipe.pos) + 1
        col = pipe.pos - (self.text.rfind("\n", 0, pipe.pos) + 1) + 1
        return TemplateError(f"template: :{line}:{col}: executing at <{pipe.text}>: {message}")

    def run(self, nodes, dot, out):
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                value = self.pipeline(node[1], dot)
                if not node[1].variables or node[1].assign is None:
                    out.append(go_str(value))
            elif kind == "break":
                raise _Break()
            elif kind == "continue":
                raise _Continue()
            else:
                self.block(node, dot, out)

    def block(self, node, dot, out):
        word, pipe, body, otherwise, _ = node
        self.scopes.append({})
        try:
            if word == "range":
                self.range(pipe, dot, body, otherwise, out)
                return
            value = self.pipeline(pipe, dot)
            if truth(value):
                self.run(body, value if word == "with" else dot, out)
            else:
                self.run(otherwise, dot, out)
        finally:
            self.scopes.pop()

    def range(self, pipe, dot, body, otherwise, out):
        variables, pipe.variables = pipe.variables, []
        try:
            value = self.pipeline(pipe, dot)
        finally:
            pipe.variables = variables
        if value is None or value is NO_VALUE:
            items = []
        elif isinstance(value, dict):
            items = sorted(value.items(), key=lambda kv: kv[0])
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = ((k, k) for k in range(value)) if value > 0 else []  # lazily: {{break}} may end it
        else:
            raise self.error(pipe, f"range can't iterate over {go_str(value)}")
        if not items:
            self.run(otherwise, dot, out)
            return
        for key, elem in items:
            if len(variables) == 1:
                self.scopes[-1][variables[0]] = elem
            elif len(variables) == 2:
                self.scopes[-1][variables[0]], self.scopes[-1][variables[1]] = key, elem
            try:
                self.run(body, elem, out)
            except _Break:
                break
            except _Continue:
                continue

    def variable(self, pipe, name):
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise self.error(pipe, f"undefined variable: {name}")

    def pipeline(self, pipe, dot):
        value = _UNSET
        for command in pipe.commands:
            value = self.command(pipe, command, dot, value)
        if pipe.variables:
            name = pipe.variables[0]
            if pipe.assign:
                self.variable(pipe, name)  # (it must exist)
                for scope in reversed(self.scopes):
                    if name in scope:
                        scope[name] = value
                        break
            else:
                self.scopes[-1][name] = value
        return value

    def command(self, pipe, command, dot, piped):
        head, args = command[0], command[1:]
        final = [] if piped is _UNSET else [piped]
        kind, value = head
        if kind == "name" and value not in ("true", "false", "nil"):
            fn = self.functions[value]
            try:
                return fn(*[self.operand(pipe, a, dot) for a in args], *final)
            except TemplateError:
                raise
            except (TypeError, ValueError, KeyError, IndexError, OverflowError, MemoryError) as e:
                raise self.error(pipe, f"error calling {value}: {e or type(e).__name__}") from None
        if kind in ("field", "var", "sub"):
            return self.chain(pipe, head, dot, [self.operand(pipe, a, dot) for a in args] + final,
                              called=bool(args) or bool(final))
        if args or final:
            raise self.error(pipe, f"can't give argument to non-function {_show(head)}")
        return self.operand(pipe, head, dot)

    def operand(self, pipe, tok, dot):
        kind, value = tok
        if kind in ("str", "num"):
            return value
        if kind == "name":
            if value in ("true", "false"):
                return value == "true"
            if value == "nil":
                return None
            return self.functions[value]()
        return self.chain(pipe, tok, dot, [], called=False)

    def chain(self, pipe, tok, dot, args, called):
        """.A.B (on dot), $v.A.B, (sub).A: field after field; the last may be a method."""
        kind, value = tok
        if kind == "field":
            base, names = dot, value
        elif kind == "var":
            base, names = self.variable(pipe, value[0]), value[1]
        else:
            base, names = self.pipeline(value[0], dot), value[1]
        if not names:
            if called:
                raise self.error(pipe, f"can't give argument to non-function {_show(tok)}")
            return base
        for k, name in enumerate(names):
            last = k == len(names) - 1
            base = self.field(pipe, base, name, args if last else [], called and last)
        return base

    def field(self, pipe, base, name, args, called):
        if isinstance(base, Context):
            value = base.fields.get(name, _UNSET)
            if value is _UNSET:
                raise self.error(pipe, f"can't evaluate field {name} in type {base.type_name} "
                                       f"(its fields: {', '.join(base.fields)})")
            if isinstance(value, Method):
                try:
                    return value.fn(*args)
                except TypeError:
                    raise self.error(pipe, f"wrong number of args for {name}: want {value.arity} "
                                           f"got {len(args)}") from None
            value = value() if callable(value) else value
        elif isinstance(base, Map):
            value = base.get(name, NO_VALUE)
        elif isinstance(base, dict):
            if name not in base:
                raise self.error(pipe, f"can't evaluate field {name} "
                                       f"(its fields: {', '.join(base) or 'none'})")
            value = base[name]
        elif base is None or base is NO_VALUE:
            raise self.error(pipe, f"nil pointer evaluating .{name}")
        else:
            raise self.error(pipe, f"can't evaluate field {name} in type {go_type_name(base)}")
        if called:
            raise self.error(pipe, f"{name} is not a method but has arguments")
        return value


_UNSET = object()


def _show(tok):
    kind, value = tok
    if kind == "field":
        return "." + ".".join(value)
    if kind == "var":
        return ".".join([value[0]] + value[1])
    return repr(value)
