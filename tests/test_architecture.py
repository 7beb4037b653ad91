"""The package's seams hold: no import cycle between diyc's modules
(function-level imports included) and no module importing another's private
name.  Read from the source with ast, so it needs no root and runs nothing."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "diyc"


def modules():
    """{'diyc.x.y': (path, is_package)} of every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def imports(name, path, is_package, known):
    """-> (modules of the package `name` imports, private names it imports)."""
    here = name.split(".") if is_package else name.split(".")[:-1]
    targets, private = set(), []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                if f"{target}.{alias.name}" in known:
                    targets.add(f"{target}.{alias.name}")
                elif target in known:
                    targets.add(target)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{name} imports {target}.{alias.name}")
    return targets - {name}, private


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_and_no_private_names_across_modules():
    known = modules()
    compiled = {"diyc._native"}  # _native/_native.pyx: a module of the package too
    graph, private = {}, []
    for name, (path, is_package) in known.items():
        graph[name], theirs = imports(name, path, is_package, known.keys() | compiled)
        private += theirs
    # a package imports its own submodules when it is imported: not a cycle
    graph = {m: {t for t in ts if t in known and not t.startswith(m + ".")}
             for m, ts in graph.items()}
    assert len(known) > 40  # the walk found the package
    assert cycles(graph) == []
    assert private == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_function_over_90_lines():
    """The style rule, docstrings counted: a long option list belongs in one
    place (create.OPTIONS_DOC), not in a function's body."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 90:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines})")
    assert not long, long
