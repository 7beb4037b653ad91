"""Help texts, in docker's shape, written from the command table: `diyc
--help`, `diyc COMMAND --help`, `diyc GROUP --help`."""

from .registry import COMMANDS, GROUPS, group_commands, top_level

GLOBAL_OPTIONS = (
    ("    --root DIR", "State directory (default $DIYC_ROOT, else /var/lib/diyc)"),
    ("-h, --help", "Print usage"),
    ("-v, --version", "Print version information and quit"),
)


MAX_LABEL = 30  # a longer label has its text on the next line


def _rows(pairs, indent="  "):
    pairs = list(pairs)
    width = min(max((len(a) for a, _ in pairs), default=0), MAX_LABEL) + 2
    lines = []
    for a, b in pairs:
        if len(a) > MAX_LABEL and b:
            lines += [f"{indent}{a}", f"{indent}{' ' * width}{b}"]
        else:
            lines.append(f"{indent}{a.ljust(width)}{b}".rstrip())
    return "\n".join(lines)


def main_help():
    return "\n".join([
        "Usage:  diyc [OPTIONS] COMMAND", "",
        "A Linux container runtime: namespaces, cgroups, overlayfs, from the kernel up", "",
        "Management Commands:",
        _rows(GROUPS.items()), "",
        "Commands:",
        _rows((c.name, c.help) for c in top_level()), "",
        "Global Options:",
        _rows(GLOBAL_OPTIONS), "",
        "Run 'diyc COMMAND --help' for more information on a command.",
    ])


def group_help(group):
    subs = group_commands(group)
    return "\n".join([
        f"Usage:  diyc {group} COMMAND", "", GROUPS[group], "",
        "Commands:",
        _rows(_first_names(subs)), "",
        f"Run 'diyc {group} COMMAND --help' for more information on a command.",
    ])


def _first_names(subs):
    """(sub, help) of each command once, under its first name in the group
    (ls, not list)."""
    seen, out = set(), []
    for sub, cmd in subs.items():
        if id(cmd) not in seen:
            seen.add(id(cmd))
            out.append((sub, cmd.help))
    return out


def command_help(name):
    cmd = COMMANDS[name]
    lines = [f"Usage:  diyc {name} {cmd.usage}".rstrip(), ""]
    if cmd.help:
        lines += [cmd.help, ""]
    aliases = [n for n in cmd.names if n != name]
    if aliases:
        lines += ["Aliases:", "  " + ", ".join(f"diyc {n}" for n in [name] + aliases), ""]
    visible = [o for o in cmd.options.options if not o.hidden]
    lines += ["Options:", _rows((o.label(), o.help) for o in visible)]
    return "\n".join(lines)


def help_for(words):
    """`diyc help [COMMAND [SUB]]`: the text, or None for an unknown name."""
    name = " ".join(words)
    if not words:
        return main_help()
    if name in GROUPS:
        return group_help(name)
    if name in COMMANDS and not COMMANDS[name].hidden:
        return command_help(name)
    return None


def command_list():
    """Every command once, with its usage and help: the README's list
    (`python -m diyc.cli.helptext` prints it)."""
    seen, rows = set(), []
    for cmd in top_level():
        seen.add(id(cmd))
        rows.append((f"diyc {cmd.name} {cmd.usage}".rstrip(), cmd.help))
    for group in GROUPS:
        for sub, cmd in group_commands(group).items():
            if id(cmd) not in seen:
                seen.add(id(cmd))
                rows.append((f"diyc {group} {sub} {cmd.usage}".rstrip(), cmd.help))
    width = max(len(usage) for usage, _ in rows)
    return "\n".join(f"{usage.ljust(width)}  {text}" for usage, text in rows)


if __name__ == "__main__":
    from .registry import load_all
    load_all()
    print(command_list())
