"""`diyc completion bash`: a bash completion script written from the
command table (commands, subcommands, each one's flags, which flags take a
value, what its arguments name), and `diyc _complete KIND...`, which the
script runs for the names of containers, images, networks and volumes."""

import os

from ..errors import InvalidArgument
from .registry import COMMANDS, GROUPS, command, group_commands, load_all, top_level

# what a word of a usage line names -> what completes it
ARGUMENT_KINDS = (("CONTAINER", "containers"), ("IMAGE", "images"), ("NETWORK", "networks"),
                  ("VOLUME", "volumes"), ("TARBALL", "files"), ("CONTEXT", "files"))

# the metavars of options whose value is a host file's name
PATH_METAVARS = {"FILE", "SRC"}

SCRIPT = r"""# bash completion for diyc, written from its command table.
#   source <(diyc completion bash)      # this shell
#   diyc completion bash > /etc/bash_completion.d/diyc      # every shell
_diyc_flags() {
    case "$1" in
%(flags)s
    esac
}
_diyc_valued() {
    case "$1" in
%(valued)s
    esac
}
_diyc_paths() {
    case "$1" in
%(paths)s
    esac
}
_diyc_args() {
    case "$1" in
%(args)s
    esac
}
_diyc_subcommands() {
    case "$1" in
%(subs)s
    esac
}
_diyc() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local i=1 cmd root=()
    while [ "$i" -lt "$COMP_CWORD" ]; do
        case "${COMP_WORDS[i]}" in
            --root) root=(--root "${COMP_WORDS[i+1]}"); i=$((i + 2)) ;;
            -*) i=$((i + 1)) ;;
            *) break ;;
        esac
    done
    if [ "$i" -ge "$COMP_CWORD" ]; then
        if [ "$prev" = --root ]; then
            COMPREPLY=($(compgen -d -- "$cur"))
        elif [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W '--root --help --version' -- "$cur"))
        else
            COMPREPLY=($(compgen -W '%(commands)s' -- "$cur"))
        fi
        return
    fi
    cmd="${COMP_WORDS[i]}"
    i=$((i + 1))
    if [ -n "$(_diyc_subcommands "$cmd")" ]; then
        if [ "$i" -ge "$COMP_CWORD" ]; then
            COMPREPLY=($(compgen -W "$(_diyc_subcommands "$cmd")" -- "$cur"))
            return
        fi
        cmd="$cmd ${COMP_WORDS[i]}"
        i=$((i + 1))
    fi
    local valued=" $(_diyc_valued "$cmd") " args n=0
    if [[ "$valued" == *" $prev "* ]]; then  # a flag's value: a file's name, or nothing to offer
        [[ " $(_diyc_paths "$cmd") " == *" $prev "* ]] && COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_diyc_flags "$cmd")" -- "$cur"))
        return
    fi
    while [ "$i" -lt "$COMP_CWORD" ]; do  # the arguments before this one
        if [[ "$valued" == *" ${COMP_WORDS[i]} "* ]]; then i=$((i + 1))
        elif [[ "${COMP_WORDS[i]}" != -* ]]; then n=$((n + 1)); fi
        i=$((i + 1))
    done
    args="$(_diyc_args "$cmd")"
    case "$args" in
        first\ *) [ "$n" -eq 0 ] || return; args="${args#first }" ;;
    esac
    case "$args" in
        files) COMPREPLY=($(compgen -f -- "$cur")) ;;
        commands) COMPREPLY=($(compgen -W '%(commands)s' -- "$cur")) ;;
        ?*) COMPREPLY=($(compgen -W "$(diyc "${root[@]}" _complete $args 2>/dev/null)" -- "$cur")) ;;
    esac
}
complete -F _diyc diyc
"""


def bash_script():
    load_all()
    flags, valued, paths, args, subs = [], [], [], [], []
    for cmd in dict.fromkeys(COMMANDS.values()):
        if cmd.hidden:
            continue
        pattern = "|".join(f"'{n}'" for n in cmd.names)
        names = [n for o in cmd.options.options if not o.hidden for n in o.names]
        flags.append(f"        {pattern}) echo '{' '.join(names)}' ;;")
        takes = [n for o in cmd.options.options if o.kind != "flag" for n in o.names]
        if takes:
            valued.append(f"        {pattern}) echo '{' '.join(takes)}' ;;")
        files = [n for o in cmd.options.options if o.kind != "flag" and PATH_METAVARS & set(
            o.metavar.replace(":", " ").replace("[", " ").split()) for n in o.names]
        if files:
            paths.append(f"        {pattern}) echo '{' '.join(files)}' ;;")
        kinds = argument_kinds(cmd)
        if kinds:
            args.append(f"        {pattern}) echo '{kinds}' ;;")
    for group in GROUPS:
        subs.append(f"        {group}) echo '{' '.join(group_commands(group))}' ;;")
    commands = " ".join([c.name for c in top_level()] + list(GROUPS))
    return SCRIPT % {"flags": "\n".join(flags), "valued": "\n".join(valued),
                     "paths": "\n".join(paths), "args": "\n".join(args),
                     "subs": "\n".join(subs), "commands": commands}


def argument_kinds(cmd):
    """What completes its arguments: "containers", "containers images",
    "first images" (run: the image, then the container's own command)."""
    if cmd.name == "help":
        return "commands"
    kinds = " ".join(dict.fromkeys(kind for word, kind in ARGUMENT_KINDS if word in cmd.usage))
    return f"first {kinds}" if kinds and cmd.stop_at_positional else kinds


@command("completion", usage="bash", help="Print the bash completion script (source <(diyc completion bash))")
def cmd_completion(root, opts, args):
    if args != ["bash"]:
        raise InvalidArgument('"diyc completion" takes one shell: bash')
    print(bash_script(), end="")
    return 0


@command("_complete", usage="KIND...", hidden=True)
def cmd_complete(root, opts, args):
    """The names the completion script offers; nothing (and no root made)
    where there is no root."""
    if not os.path.isdir(root.path):
        return 0
    for kind in args:
        for name in names_of(root, kind):
            print(name)
    return 0


def names_of(root, kind):
    if kind == "containers":
        from ..runtime import Container
        return [c.name for c in Container.list(root, all=True)]
    if kind == "images":
        from ..images.store import ImageStore
        return [t for img in ImageStore(root).list() for t in img["repo_tags"]]
    if kind == "networks":
        from ..net.roots import list_networks
        return [n["name"] for n in list_networks(root)]
    if kind == "volumes":
        from ..volumes import list_volumes
        return list_volumes(root)
    return []
