"""diyc about itself: help, version, info, cleanup, system prune, system reset."""

import os
import sys

from ..errors import InvalidArgument
from ..options import FLAG, VALUE, Option
from .common import FORCE, confirm, reason
from .registry import command, load_all


@command("help", usage="[COMMAND [SUBCOMMAND]]", help="Show the help of diyc or of a command")
def cmd_help(root, opts, args):
    from .helptext import help_for
    load_all()
    text = help_for(args)
    if text is None:
        raise InvalidArgument(f"unknown help topic: {' '.join(args)} (see diyc --help)")
    print(text)
    return 0


def version_info():
    from .. import __version__
    machine = os.uname()
    return {"Version": __version__, "Python": sys.version.split()[0],
            "Kernel": machine.release, "OS/Arch": f"linux/{machine.machine}"}


@command("version", usage="", nargs=0, help="Show the diyc version information", options=(
    Option("--format", "format", VALUE, "string", "Format output: 'json' or a Go template"),))
def cmd_version(root, opts, args):
    return _print_fields(version_info(), opts)


@command("info", "system info", usage="", nargs=0, help="Display system-wide information", options=(
    Option("--format", "format", VALUE, "string", "Format output: 'json' or a Go template"),))
def cmd_info(root, opts, args):
    return _print_fields(system_info(root), opts)


def _print_fields(fields, opts):
    if opts.get("format") not in (None, "json"):  # a Go template: {{.Version}}, {{index . "Root Dir"}}
        from ..formatting import format_each
        sys.stdout.write(format_each(opts["format"], [fields]))
        return 0
    if opts.get("format") == "json":
        import json
        print(json.dumps(fields, indent=2))
        return 0
    for key, value in fields.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f" {k}: {v}")
        else:
            print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return 0


def system_info(root):
    """docker info's facts, read without creating anything."""
    from ..formatting import bytes_size
    from ..runtime import Container
    statuses = [c.status for c in Container.list(root, all=True)] if os.path.isdir(root.path) else []
    machine = os.uname()
    return {
        "Containers": {"Total": len(statuses), "Running": statuses.count("running"),
                       "Stopped": len(statuses) - statuses.count("running")},
        "Images": _image_count(root),
        "Server Version": version_info()["Version"],
        "Root Dir": root.path,
        "Storage Driver": "overlay",
        "Cgroup Driver": "cgroupfs",
        "Cgroup Version": cgroup_version(),
        "Kernel Version": machine.release,
        "Operating System": _os_name(),
        "Architecture": machine.machine,
        "CPUs": os.cpu_count(),
        "Total Memory": bytes_size(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
        "Runtimes": ["diyc (in process)", "diyc-runc (OCI, for podman, containerd, CRI-O)"],
        "Security Options": ["seccomp (built-in default profile)", "no-new-privileges",
                             "userns (--userns auto)"],
        "Server": _server_status(root),
    }


def cgroup_version(base="/sys/fs/cgroup"):
    """2 (unified), 1, or 1 with a cgroup2 mount beside the v1 hierarchies."""
    from ..cgroups import is_v2
    if is_v2(base):
        return "2"
    if os.path.exists(f"{base}/unified/cgroup.controllers"):
        return f"1 (hybrid: cgroup2 at {base}/unified)"
    return "1"


def _image_count(root):
    if not os.path.isdir(f"{root.path}/images"):
        return 0
    from ..images.store import ImageStore
    return len(ImageStore(root).list())


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def _server_status(root):
    from ..server import Paths, running_pid
    pid = running_pid(Paths(root))
    return "not running" if pid is None else f"running (pid {pid})"


@command("cleanup", "system cleanup", usage="", nargs=0, help="Remove what crashed runs left behind")
def cmd_cleanup(root, opts, args):
    from ..runtime import cleanup
    for line in cleanup(root):
        print(line)
    return 0


@command("system df", usage="", nargs=0, help="Show disk usage: images, containers, local volumes, build cache")
def cmd_system_df(root, opts, args):
    from ..disk_usage import disk_usage, table_rows
    from ..formatting import human_size
    from ..options import print_table
    print_table(("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"), table_rows(disk_usage(root), human_size))
    return 0


@command("system prune", usage="[OPTIONS]", nargs=0, help="Remove unused data", options=(
    Option("-a --all", "all", FLAG, help="Remove all unused images, not just those without a name"),
    FORCE, Option("--volumes", "volumes", FLAG,
                  help="Prune anonymous volumes (as docker 23+: named ones need volume prune -a)")))
def cmd_system_prune(root, opts, args):
    items = ["all stopped containers", "all networks not used by at least one container"]
    items += ["anonymous volumes not used by at least one container"] if opts.get("volumes") else []
    items += ["all images without at least one container associated to them" if opts.get("all")
              else "all dangling images"]
    if not confirm("system prune", "This will remove:\n" + "\n".join(f"  - {i}" for i in items), opts):
        return 0
    from ..images.store import ImageStore
    from ..net import network as networking
    from .containers import prune_containers
    sections = [("Deleted Containers", prune_containers(root)), ("Networks", networking.prune(root))]
    if opts.get("volumes"):
        from ..volumes import prune_volumes
        sections.append(("Deleted Volumes", prune_volumes(root, anonymous_only=True)))
    sections.append(("Deleted Images", ImageStore(root).prune(all=opts.get("all", False))))
    for title, lines in sections:
        if lines:
            print("\n".join([f"{title}:", *lines, ""]))
    return 0


@command("system reset", usage="[OPTIONS]", nargs=0,
         help="Remove every container and network of this root, its bridges and firewall table; "
              "restore ip_forward", options=(FORCE,))
def cmd_system_reset(root, opts, args):
    if not confirm("system reset", "This removes every container and network of this diyc root,\n"
                   "its bridges and nftables table, and restores net.ipv4.ip_forward.\n"
                   "Images and volumes stay.", opts):
        return 0
    from ..reset import reset
    lines, failed = reset(root)
    for line in lines:
        print(line)
    for name, e in failed:
        print(f"diyc: system reset {name}: {reason(e)}", file=sys.stderr)
    return 1 if failed else 0
