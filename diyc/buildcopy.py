"""COPY and ADD of `diyc build`: sources from the context, a stage or an
image, resolved inside it (a symlink is followed only within it), written
straight into a layer tar, never onto the host; local tars are unpacked
(ADD)."""

import stat
import time

from . import dockerfile as df
from .buildfs import (ContextDir, RootfsView, bytes_opener, checksum, is_archive, opener, small_sha256,
                      split_path)
from .buildlayer import LayerTar, unpack_archive_into
from .errors import InvalidArgument


class CopyStep:
    """One COPY or ADD instruction of a Builder's build."""

    def __init__(self, builder):
        self.builder = builder
        self.store = builder.store
        self.escape = builder.escape

    def run(self, stage, state, ins, add):
        env = state.expand_env()
        if ins.json is not None:
            words = [df.expand(w, env, self.escape) for w in ins.json]
        else:
            words = df.expand_words(ins.args, env, self.escape)
        if len(words) < 2:
            raise ins.error(f"{ins.cmd} requires at least two arguments: SOURCE... DEST")
        sources, dest = words[:-1], words[-1]
        view = state.view(self.store)
        uid, gid = self._chown(ins, env, view)
        chmod = None
        if "chmod" in ins.flags:
            try:
                chmod = int(ins.flags["chmod"], 8)
            except ValueError:
                raise ins.error(f"invalid --chmod {ins.flags['chmod']!r}: expected an octal mode") from None
        source_root, source_desc = self._source_root(stage, ins, env)
        items = self._items(sources, ins, env, source_root, source_desc)
        # where it goes
        if not dest.startswith("/"):
            dest = (state.cfg.get("WorkingDir") or "/").rstrip("/") + "/" + dest
        dest_is_dir = dest.endswith("/") or dest.endswith("/.") or len(items) > 1 or \
            any(self._is_wildcard(s) for s in sources)
        resolved = view.resolve(dest)
        st = view.lstat(resolved)
        if st is not None and stat.S_ISDIR(st.st_mode):
            dest_is_dir = True
        if len(items) > 1 and not (dest.endswith("/") or (st is not None and stat.S_ISDIR(st.st_mode))):
            raise ins.error(f"When using {ins.cmd} with more than one source file, "
                            "the destination must be a directory and end with a /")
        entries = []  # (dest parts, kind, mode, size, opener, linkname, mtime, checksum)
        for kind, a, data in items:
            if kind == "heredoc":
                target = resolved + [a] if dest_is_dir else resolved
                mode = 0o644 if chmod is None else chmod
                entries.append((target, "file", mode, len(data), bytes_opener(data), "", time.time(),
                                small_sha256(data).hexdigest()))
                continue
            parts = a
            sst = source_root.lstat(parts)
            if stat.S_ISDIR(sst.st_mode):
                self._walk_source(source_root, parts, resolved, entries, chmod, include_self=st is None)
            elif add and stat.S_ISREG(sst.st_mode) and is_archive(source_root, parts):
                entries.append((resolved, "archive", 0, sst.st_size, opener(source_root, parts), "",
                                sst.st_mtime, checksum(source_root, parts)))
            else:
                target = resolved + [parts[-1]] if dest_is_dir else resolved
                if not target:
                    raise ins.error(f"{ins.cmd}: cannot copy a file onto /")
                entries.append(self._entry(source_root, parts, sst, target, chmod))
        detail = [source_desc, uid, gid, chmod,
                  [("/".join(e[0]), e[1], e[2], e[3], e[5], e[7]) for e in entries]]

        def produce():
            layer = LayerTar(self.builder.root.tmp)
            try:
                now = time.time()
                written = set()
                for target, kind, mode, size, opener, linkname, mtime, _ in entries:
                    self.add_parents(layer, view, target, now, written)
                    name = "/".join(target)
                    if kind == "archive":
                        with opener() as f:
                            unpack_archive_into(layer, f, target, written)
                        continue
                    written.add(name)
                    if kind == "dir":
                        layer.add(name, "dir", mode, uid, gid, mtime)
                    elif kind == "symlink":
                        layer.add(name, "symlink", 0o777, uid, gid, mtime, linkname=linkname)
                    else:
                        with opener() as f:
                            layer.add(name, "file", mode, uid, gid, mtime, fileobj=f, size=size)
                return layer.store(self.store)
            except BaseException:
                layer.discard()
                raise
        return detail, produce

    def _items(self, sources, ins, env, source_root, source_desc):
        """The sources, resolved: ("heredoc", name, bytes) or ("path",
        parts in source_root, None)."""
        heredocs = {name: (body, expand) for name, body, expand in ins.heredocs}
        items = []
        for src in sources:
            if src.startswith("<<") and src.lstrip("<-").strip("'\"") in heredocs:
                name = src.lstrip("<-").strip("'\"")
                body, expand = heredocs[name]
                if expand:
                    body = df.expand_vars(body, env, self.escape)
                items.append(("heredoc", name, body.encode()))
                continue
            if "://" in src or src.startswith("git@"):
                raise ins.error(f"{ins.cmd} from a URL is not supported by diyc build: {src}")
            for parts in self._glob(source_root, src, ins, source_desc):
                items.append(("path", parts, None))
        return items

    def _is_wildcard(self, src):
        return any(c in src for c in "*?[")

    def _source_root(self, stage, ins, env):
        """Where COPY reads: the context, a stage's rootfs or an image's."""
        src = ins.flags.get("from")
        if src is None:
            if self.builder.context is None:
                raise ins.error(f"{ins.cmd}: there is no build context")
            return self.builder.context, "context"
        if ins.cmd != "COPY":
            raise ins.error("--from is only valid for COPY")
        ref_name = df.expand(src, self.builder.global_args, self.escape)
        ref = self.builder.stage_ref(ref_name, stage)
        if ref is not None:
            other = self.builder.stages[ref].result
            return other.view(self.store), ["stage", other.key, other.layers]
        record = self.store.get(ref_name)
        return RootfsView(self.store.layer_dirs(record)), ["image", record["id"]]

    def _glob(self, root, src, ins, desc):
        """Context (or rootfs) paths a source names, resolved inside it."""
        is_context = isinstance(root, ContextDir)
        if not self._is_wildcard(src):
            parts = root.resolve(src)
            st = root.lstat(parts)
            if st is None or (is_context and root.excluded(parts)):
                where = "build context or excluded by .dockerignore" if is_context else "source stage or image"
                raise ins.error(f"{ins.cmd} failed: file not found in {where}: {src}")
            return [parts]
        from .dockerignore import compile_component
        matches = [[]]
        for comp in split_path(src):
            nxt = []
            for base in matches:
                if comp == "..":
                    nxt.append(base[:-1])
                    continue
                if not self._is_wildcard(comp):
                    nxt.append(base + [comp])
                    continue
                regex = compile_component(comp)
                try:
                    names = root.listdir(root.resolve("/".join(base)))
                except OSError:
                    continue
                nxt += [base + [n] for n in names if regex.match(n)]
            matches = nxt
        out = []
        for m in matches:
            parts = root.resolve("/".join(m))
            if root.lstat(parts) is not None and not (is_context and root.excluded(parts)):
                out.append(parts)
        if not out:
            raise ins.error(f"{ins.cmd} failed: no source files were specified by {src!r}")
        return out

    def _entry(self, root, parts, st, target, chmod):
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            return (target, "symlink", 0o777, 0, None, root.readlink(parts), st.st_mtime, None)
        if stat.S_ISREG(mode):
            m = chmod if chmod is not None else stat.S_IMODE(mode)
            return (target, "file", m, st.st_size, opener(root, parts), "", st.st_mtime,
                    checksum(root, parts))
        raise InvalidArgument(f"cannot copy {'/'.join(parts)}: not a regular file, directory or symlink")

    def _walk_source(self, root, parts, target, entries, chmod, include_self=True):
        """A directory's contents under target (and the directory itself,
        unless the target exists already)."""
        is_context = isinstance(root, ContextDir)
        st = root.lstat(parts)
        if target and include_self:
            entries.append((target, "dir", chmod if chmod is not None else stat.S_IMODE(st.st_mode),
                            0, None, "", st.st_mtime, None))
        for name in sorted(root.listdir(parts)):
            child = parts + [name]
            if is_context and root.excluded(child):
                if not root.ignore.has_exceptions:
                    continue
                cst = root.lstat(child)
                if cst is None or not stat.S_ISDIR(cst.st_mode):
                    continue
            cst = root.lstat(child)
            if cst is None:
                continue
            if stat.S_ISDIR(cst.st_mode):
                before = len(entries)
                self._walk_source(root, child, target + [name], entries, chmod)
                if is_context and root.excluded(child) and len(entries) == before + 1:
                    entries.pop()  # an excluded dir kept only for its exceptions: none matched
            elif stat.S_ISREG(cst.st_mode) or stat.S_ISLNK(cst.st_mode):
                entries.append(self._entry(root, child, cst, target + [name], chmod))
            # devices, fifos and sockets of a context are not copied

    def add_parents(self, layer, view, target, now, written=None):
        """Directory entries for the missing parents of `target`."""
        for k in range(1, len(target)):
            parent = target[:k]
            name = "/".join(parent)
            if written is not None and name in written:
                continue
            if view.lstat(parent) is None:
                layer.add(name, "dir", 0o755, 0, 0, now)
            if written is not None:
                written.add(name)

    def _chown(self, ins, env, view):
        spec = ins.flags.get("chown")
        if spec is None:
            return 0, 0
        spec = df.expand(spec, env, self.escape)
        user, _, group = spec.partition(":")

        def lookup(name, path, what):
            if name.isdigit():
                return int(name)
            for line in view.read_text(path).splitlines():
                fields = line.split(":")
                if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                    return int(fields[2])
            raise ins.error(f"--chown={spec}: no {what} {name!r} in the image's {path}")
        uid = lookup(user, "/etc/passwd", "user")
        gid = lookup(group, "/etc/group", "group") if group else uid
        if not group and not user.isdigit():
            for line in view.read_text("/etc/passwd").splitlines():
                fields = line.split(":")
                if len(fields) >= 4 and fields[0] == user and fields[3].isdigit():
                    gid = int(fields[3])
        return uid, gid
