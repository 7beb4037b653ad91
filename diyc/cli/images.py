"""The image commands: images, rmi, tag, import, pull, push, login, logout, load,
save, image inspect, build, history."""

import os
import sys

from ..errors import InvalidArgument
from ..options import FLAG, LIST, VALUE, Option
from .common import (FORCE, FORMAT, INSPECT_FORMAT, confirm, print_formatted, print_inspected,
                     standard_input)
from .registry import command

QUIET = Option("-q --quiet", "quiet", FLAG, help="Only show image IDs")


@command("images", "image ls", "image list", usage="[OPTIONS] [REPOSITORY[:TAG]]", nargs=(0, 1),
         needs="at most 1 argument: [REPOSITORY[:TAG]]", help="List images", options=(
             QUIET, Option("-a --all", "all", FLAG, help="Show all images (diyc keeps no intermediate ones)"),
             Option("--no-trunc", "no_trunc", FLAG, help="Don't truncate output"),
             Option("--digests", "digests", FLAG, help="Show digests"),
             Option("-f --filter", "filters", LIST, "KEY=VALUE",
                    "Filter output: dangling=true|false, reference=PATTERN, label=KEY[=VALUE]"),
             FORMAT))
def cmd_images(root, opts, args):
    from ..images.store import ImageStore
    from ..listing import IMAGES_DIGESTS_TABLE, IMAGES_HEADERS, IMAGES_TABLE, image_rows
    from .common import filters_given
    filters = filters_given(opts)
    if args:  # as docker's: a reference filter
        filters.setdefault("reference", []).append(args[0])
    rows = image_rows(ImageStore(root), no_trunc=opts.get("no_trunc", False), filters=filters)
    if opts.get("quiet"):  # an image once, however many names it has
        rows = list({row.fields["ID"]: row for row in rows}.values())
    table = IMAGES_DIGESTS_TABLE if opts.get("digests") else IMAGES_TABLE
    return print_formatted(opts, rows, table, IMAGES_HEADERS, quiet_format="{{.ID}}")


@command("rmi", "image rm", "image remove", usage="[OPTIONS] IMAGE [IMAGE...]",
         nargs=(1, None), needs="at least one image", help="Remove one or more images", options=(
             Option("-f --force", "force", FLAG,
                    help="Remove an image a stopped container uses (untag one a running container uses)"),))
def cmd_rmi(root, opts, args):
    from ..images.store import ImageStore
    end_warm_containers(root)
    for ref in args:
        for line in ImageStore(root).remove(ref, force=opts.get("force", False)):
            print(line)
    return 0


@command("tag", "image tag", usage="SOURCE_IMAGE TARGET_IMAGE[:TAG]", nargs=2, needs="SOURCE and TARGET",
         help="Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
def cmd_tag(root, opts, args):
    from ..images.store import ImageStore
    ImageStore(root).tag(args[0], args[1])
    return 0


@command("import", "image import", usage="TARBALL|- NAME[:TAG]", nargs=2, needs="TARBALL and NAME[:TAG]",
         help="Import a flat rootfs tarball as an image")
def cmd_import(root, opts, args):
    from ..images.store import ImageStore
    store = ImageStore(root)
    if args[0] == "-":
        record = store.import_tarball(standard_input().buffer, args[1])
    else:
        try:
            f = open(args[0], "rb")
        except OSError as e:
            raise InvalidArgument(f"cannot open {args[0]}: {e.strerror}") from None
        with f:
            record = store.import_tarball(f, args[1])
    print(record["id"])
    return 0


INSECURE = Option("--insecure", "insecure", FLAG,
                  help="Accept any TLS certificate, or plain HTTP (loopback registries are plain HTTP anyway)")


@command("pull", "image pull", usage="[OPTIONS] [REGISTRY/]NAME[:TAG|@DIGEST]",
         nargs=1, needs="one image: diyc pull [REGISTRY/]NAME[:TAG|@DIGEST]",
         help="Pull an image from a registry (v2 API)", options=(
             Option("--platform", "platform", VALUE, "OS/ARCH", "Platform to pull"), INSECURE,
             Option("-q --quiet", "quiet", FLAG, help="Suppress verbose output")))
def cmd_pull(root, opts, args):
    from ..images.puller import Progress, pull
    from ..images.reference import parse_reference
    from ..images.store import ImageStore
    ref = parse_reference(args[0])
    pull(ImageStore(root), ref, platform=opts.get("platform"), insecure=opts.get("insecure", False),
         progress=Progress(sys.stdout, quiet=opts.get("quiet", False)))
    print(ref)
    return 0


@command("push", "image push", usage="[OPTIONS] [REGISTRY/]NAME[:TAG]",
         nargs=1, needs="one image: diyc push [REGISTRY/]NAME[:TAG]",
         help="Push an image to a registry (v2 API)", options=(
             Option("-a --all-tags", "all_tags", FLAG, help="Push every tag of NAME"),
             INSECURE, Option("-q --quiet", "quiet", FLAG, help="Suppress verbose output")))
def cmd_push(root, opts, args):
    from ..errors import ImageNotFound
    from ..images.puller import Progress
    from ..images.pusher import local_tags, push
    from ..images.reference import parse_reference
    from ..images.store import ImageStore
    store = ImageStore(root)
    ref = parse_reference(args[0])
    if ref.digest:
        raise InvalidArgument(f"cannot push a digest reference: {args[0]}; push NAME[:TAG]")
    tags = [ref.tag]
    if opts.get("all_tags"):
        if ":" in args[0].rpartition("/")[2]:
            raise InvalidArgument("tag can't be used with --all-tags/-a")
        tags = local_tags(store, ref)
        if not tags:
            raise ImageNotFound(f"An image does not exist locally with the tag: {args[0]}")
    quiet = opts.get("quiet", False)
    for tag in tags:
        tagged = parse_reference(f"{ref.given}:{tag}")
        push(store, tagged, insecure=opts.get("insecure", False), progress=Progress(sys.stdout, quiet=quiet))
        if quiet:
            print(f"{ref.given}:{tag}")
    return 0


@command("login", usage="[OPTIONS] REGISTRY", nargs=1, needs="a registry: diyc login [-u USER] REGISTRY",
         help="Store registry credentials (0600)", options=(
    Option("-u --username", "user", VALUE, "USER", "Username"),
    Option("-p --password", "password", VALUE, "PASS", "Password"),
    Option("--password-stdin", "password_stdin", FLAG, help="Take the password from stdin"),
    INSECURE))
def cmd_login(root, opts, args):
    from ..images.registry import login
    user = opts.get("user")
    if user is None:
        user = input("Username: ")
    password = opts.get("password")
    if opts.get("password_stdin"):
        password = standard_input().readline().rstrip("\n")
    elif password is None:
        import getpass
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise InvalidArgument('"diyc login" requires a username and a password')
    login(root, args[0], user, password, insecure=opts.get("insecure", False))
    print("Login Succeeded")
    return 0


@command("logout", usage="REGISTRY", nargs=1, needs="a registry", help="Remove a registry's stored credentials")
def cmd_logout(root, opts, args):
    from ..images.registry import remove_credentials
    print(f"Removed login credentials for {args[0]}" if remove_credentials(root, args[0])
          else f"Not logged in to {args[0]}")
    return 0


@command("load", "image load", usage="[OPTIONS]", nargs=0, help="Load a docker-save or OCI archive", options=(
    Option("-i --input", "input", VALUE, "FILE", "Read from a tar archive file, instead of STDIN"),
    Option("-q --quiet", "quiet", FLAG, help="Suppress the load output")))
def cmd_load(root, opts, args):
    from ..images.archive import load
    from ..images.store import ImageStore
    store = ImageStore(root)
    log = (lambda line: None) if opts.get("quiet") else print
    path = opts.get("input", "-")
    if path != "-":
        load(store, path, log)
        return 0
    # stdin: spool it (the archive is read out of order)
    tmp = f"{root.ensure().tmp}/load-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        with open(tmp, "wb") as f:
            while chunk := standard_input().buffer.read(1 << 20):
                f.write(chunk)
        load(store, tmp, log)
    finally:
        os.unlink(tmp)
    return 0


@command("save", "image save", usage="[OPTIONS] IMAGE [IMAGE...]",
         nargs=(1, None), needs="at least one image: diyc save -o FILE IMAGE...",
         help="Write images as an OCI archive", options=(
             Option("-o --output", "output", VALUE, "FILE", "Write to a file, instead of STDOUT"),))
def cmd_save(root, opts, args):
    from ..images.archive import save
    from ..images.store import ImageStore
    out = opts.get("output")
    if out is None or out == "-":
        if sys.stdout.isatty():
            raise InvalidArgument('"diyc save" refuses to write an archive to a terminal: use -o FILE')
        save(ImageStore(root), args, sys.stdout.buffer)
    else:
        try:
            save(ImageStore(root), args, out)
        except OSError as e:  # the output's directory is missing, not writable, full
            if not str(e.filename or "").startswith(out):
                raise
            raise InvalidArgument(f"cannot write {out}: {e.strerror}") from None
    return 0


@command("image prune", usage="[OPTIONS]", nargs=0, help="Remove unused images", options=(
    Option("-a --all", "all", FLAG, help="Remove all images not used by a container, not just "
                                         "those without a name"), FORCE))
def cmd_image_prune(root, opts, args):
    warning = ("This will remove all images without at least one container associated to them."
               if opts.get("all") else "This will remove all dangling images.")
    if confirm("image prune", warning, opts):
        from ..images.store import ImageStore
        end_warm_containers(root)
        for line in ImageStore(root).prune(all=opts.get("all", False)):
            print(line)
    return 0


@command("image inspect", usage="[OPTIONS] IMAGE [IMAGE...]", nargs=(1, None), needs="at least one image",
         help="Show low-level information on images, in docker's shape", options=(INSPECT_FORMAT,))
def cmd_image_inspect(root, opts, args):
    from ..inspect_view import lookup
    return print_inspected(opts, [lookup(root, ref, "image") for ref in args])


@command("build", "image build", usage="[OPTIONS] CONTEXT|-",
         nargs=1, needs="exactly one argument: diyc build [OPTIONS] CONTEXT|-",
         help="Build an image from a Dockerfile", options=(
             Option("-t --tag", "tags", LIST, "NAME[:TAG]", "Name and optionally a tag (repeatable)"),
             Option("-f --file", "file", VALUE, "FILE",
                    "Name of the Dockerfile (default CONTEXT/Dockerfile)"),
             Option("--build-arg", "build_args", LIST, "K=V", "Set a build-time variable (repeatable)"),
             Option("--target", "target", VALUE, "STAGE", "Build this stage"),
             Option("--no-cache", "no_cache", FLAG, help="Do not use the build cache"),
             Option("--network", "network", VALUE, "MODE", "Network of the RUN steps (default none)"),
             Option("--progress", "progress", VALUE, "MODE", "auto, plain, tty or quiet"),
             Option("-q --quiet", "quiet", FLAG, help="Print only the image ID")))
def cmd_build(root, opts, args):
    build_args = {}
    for item in opts.get("build_args", []):
        k, eq, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid --build-arg {item!r}: expected KEY=VALUE")
        if eq:
            build_args[k] = v
        elif k in os.environ:  # a bare KEY takes the value from our environment, as docker
            build_args[k] = os.environ[k]
    mode = opts.get("progress", "auto")
    if mode not in ("auto", "plain", "tty", "quiet"):
        raise InvalidArgument(f"invalid --progress {mode!r}: expected plain, tty or auto")
    from ..build_progress import Printer
    from ..builder import build, stdin_context
    # progress on stdout, as docker's classic builder and podman; the last
    # line is the image id (the only one with -q); errors are one line on stderr
    printer = Printer(sys.stdout, quiet=opts.get("quiet") or mode == "quiet",
                      tty=mode == "tty" or (mode == "auto" and sys.stdout.isatty()))
    context = args[0]
    dockerfile = opts.get("file")
    if context == "-":
        context, dockerfile = stdin_context(standard_input().buffer, dockerfile)
    elif not os.path.isdir(context):
        raise InvalidArgument(f"unable to prepare context: {context} is not a directory")
    elif dockerfile not in (None, "-"):
        dockerfile = os.path.abspath(dockerfile)  # -f is relative to here, as docker's
    if dockerfile == "-":
        dockerfile = standard_input().buffer.read()
    image_id = build(context, tags=opts.get("tags", []), dockerfile=dockerfile, build_args=build_args,
                     target=opts.get("target"), no_cache=opts.get("no_cache", False),
                     network=opts.get("network", "none"), progress=printer, root=root)
    print(image_id)
    return 0


@command("history", "image history", usage="[OPTIONS] IMAGE",
         nargs=1, needs="one image", help="Show the history of an image",
         options=(Option("-q --quiet", "quiet", FLAG, help="Only show image IDs"),
                  Option("--no-trunc", "no_trunc", FLAG, help="Don't truncate output"),
                  Option("-H --human", "human", FLAG,
                         help="Print sizes and dates in human readable format (default true)"),
                  FORMAT))
def cmd_history(root, opts, args):
    from ..images.store import ImageStore
    from ..listing import HISTORY_HEADERS, HISTORY_TABLE, history_rows
    rows = history_rows(ImageStore(root), args[0], no_trunc=opts.get("no_trunc", False),
                        human=opts.get("human", True))
    return print_formatted(opts, rows, HISTORY_TABLE, HISTORY_HEADERS, quiet_format="{{.ID}}")


def end_warm_containers(root):
    """The server's warm containers hold their image: they end first (a
    cache, not the user's containers)."""
    from ..pool_keeper import end_warm_containers as end
    end(root, lambda record: True)
