"""Container's file-system methods, docker-py's (get_archive, put_archive,
diff, export, commit): a mixin of runtime.Container, thin over diyc.copy
and diyc.changes (imported when called: none of it is on the start path)."""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence


class ContainerFiles:
    """Methods of runtime.Container; `self` is a record.ContainerRecord."""

    def get_archive(self, path: "str", chunk_size: "int" = 2 << 20,
                    follow_link: "bool" = False) -> "tuple[Iterator[bytes], dict]":
        """(the tar of `path` in the container, in chunks; its stat: name,
        size, mode, mtime, linkTarget), as docker-py's.  `path/.`: the
        directory's entries.  Running or stopped; symlinks resolve inside
        the container's root."""
        from .copy import get_archive
        return get_archive(self, path, chunk_size, follow_link)

    def put_archive(self, path: "str", data: "bytes | Iterable[bytes]") -> "bool":
        """Unpack the tar `data` into the existing directory `path` of the
        container (entries' owners kept) -> True, as docker-py's."""
        from .copy import put_archive
        return put_archive(self, path, data)

    def diff(self) -> "list[dict]":
        """The container's changes to its image: [{"Path": "/tmp/x", "Kind":
        0 (changed) | 1 (added) | 2 (deleted)}], as docker-py's."""
        from .changes import diff
        return diff(self)

    def export(self, chunk_size: "int" = 2 << 20) -> "Iterator[bytes]":
        """The container's file system (image and changes, no volumes) as a
        tar, in chunks, as docker-py's."""
        import tempfile
        from .changes import export
        with tempfile.TemporaryFile(dir=self.root.tmp) as f:
            export(self, f)
            f.seek(0)
            while data := f.read(chunk_size):
                yield data

    def commit(self, repository: "str | None" = None, tag: "str | None" = None, message: "str | None" = None,
               author: "str | None" = None, changes: "str | Sequence[str] | None" = None,
               pause: "bool" = True) -> "dict":
        """A new image of the container's image plus its changes (one layer),
        its command and environment, `changes` (Dockerfile lines: CMD, ENV,
        ...) applied -> the image record, as `diyc commit`.  pause: a
        running container is frozen meanwhile, as docker-py's default."""
        from .changes import commit
        ref = f"{repository}:{tag or 'latest'}" if repository else None
        if isinstance(changes, str):
            changes = [changes]
        return commit(self, ref, message, author, changes or (), pause)
