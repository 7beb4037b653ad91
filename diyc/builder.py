"""`diyc build`: a Dockerfile to an image, on the same engine, with a cache.

Each stage starts from an image's layers and config; each instruction
either changes the config only (ENV, CMD, ...) or adds one layer:

    RUN          a diyc container on the current layers; after it exits its
                 overlay upper dir becomes the layer (deleted files as
                 whiteouts, opaque dirs as `.wh..wh..opq`), then the
                 container is removed
    COPY / ADD   the files are written straight into a layer tar (from the
                 context, another stage or an image); nothing is copied
                 onto the host and no container is needed
    WORKDIR      a layer holding the directory, when it does not exist yet

Layers go into the store content-addressed like pulled ones
(ImageStore.add_layer_blob); the whole build holds the store's "adding"
lock so garbage collection never takes a layer the build is using.

The cache: each step has a key, the sha256 of its parent's key and layer
chain, its instruction text, the values it expands or the build args a RUN
sees, and the checksums (with modes and owners) of the files it copies.
build-cache/<key>.json holds what the step made (a layer's diff-id or
none, and when); an entry whose layer is gone is a miss.  A rebuild where
every step hits creates no container and gives the same image id.

The context and the Dockerfile are untrusted: every path in the context
or in an image is resolved inside its own root (a symlink is followed
only within it), every file is opened relative to a directory fd with
O_NOFOLLOW, so nothing outside is ever read.
"""

import os
import stat
import time

from . import _json, dockerfile as df
from .buildcopy import CopyStep
from .buildfs import ContextDir, clean_parts
from .buildlayer import LayerTar, upper_to_layer
from .buildstate import (PROXY_ARGS, Cache, Stage, State, base_history, digest, platform_args,
                         timestamp)
from .errors import DiycError, ImageNotFound, InvalidArgument, NotFound
from .images.store import DEFAULT_PATH_ENV, ImageStore
from .state import Root, remove_tree

DEFAULT_SHELL = ["/bin/sh", "-c"]


class BuildError(DiycError):
    """A build step failed; `exit_code` is a failing RUN's own."""

    def __init__(self, message, exit_code=125):
        super().__init__(message)
        self.exit_code = exit_code


# -- the builder ---------------------------------------------------------------

class Builder:
    def __init__(self, root, context, dockerfile_text, dockerfile_name="Dockerfile", tags=(),
                 build_args=None, target=None, no_cache=False, network="none", progress=None):
        self.root = root
        self.store = ImageStore(root)
        self.context = context
        self.tags = list(tags)
        for t in self.tags:
            from .images.reference import name_and_tag
            name_and_tag(t)
        self.build_args = dict(build_args or {})
        self.used_args = set()
        self.target = target
        self.network = network
        _check_network(root, network)
        self.cache = Cache(root, self.store, enabled=not no_cache)
        self.progress = progress or (lambda event: None)
        self.parsed = df.parse(dockerfile_text, dockerfile_name)
        self.escape = self.parsed.escape
        self.step = 0
        self.total = 0
        self.ran_containers = 0

    def emit(self, **event):
        self.progress(event)

    # -- plan ---------------------------------------------------------------

    def _global_args(self):
        args = {}
        for ins in self.meta_args:
            for key, value in self._arg_pairs(ins, args):
                args[key] = value
        args.update({k: v for k, v in platform_args().items() if k not in args})
        return args

    def _arg_pairs(self, ins, env):
        """ARG NAME[=default] ... -> [(name, value or None)], build args win."""
        pairs = []
        for word in df.raw_words(ins.args, self.escape):
            name, eq, default = word.partition("=")
            name = df.expand(name, env, self.escape)
            if not name or not all(c.isalnum() or c == "_" for c in name):
                raise ins.error(f"invalid ARG name {name!r}")
            value = df.expand(default, env, self.escape) if eq else None
            if name in self.build_args:
                value = self.build_args[name]
                self.used_args.add(name)
            pairs.append((name, value))
        return pairs

    def plan(self):
        """Split into stages; -> the stages the target needs, in order."""
        instructions = self.parsed.instructions
        self.meta_args = []
        stages = []
        for ins in instructions:
            if ins.cmd == "FROM":
                break
            self.meta_args.append(ins)
        self.global_args = self._global_args()
        for ins in instructions[len(self.meta_args):]:
            if ins.cmd == "FROM":
                words = df.expand_words(ins.args, self.global_args, self.escape)
                if len(words) == 3 and words[1].lower() == "as":
                    base, name = words[0], words[2].lower()
                elif len(words) == 1:
                    base, name = words[0], None
                else:
                    raise ins.error("FROM requires one image (FROM IMAGE [AS NAME])")
                if not base:
                    raise ins.error("FROM: the image name is empty after substitution")
                st = Stage(len(stages), base, name, ins)
                for s in stages:
                    if s.name and s.name == base.lower():
                        st.base_stage = s.index
                stages.append(st)
            else:
                if ins.cmd == "MAINTAINER":
                    pass
                stages[-1].instructions.append(ins)
        self.stages = stages
        if self.target is None:
            target = stages[-1]
        else:
            found = [s for s in stages if s.name == self.target.lower()]
            if not found:
                raise InvalidArgument(f"target stage {self.target!r} could not be found")
            target = found[0]
        needed = set()

        def need(stage):
            if stage.index in needed:
                return
            needed.add(stage.index)
            if stage.base_stage is not None:
                need(stages[stage.base_stage])
            for ins in stage.instructions:
                src = ins.flags.get("from") if ins.cmd == "COPY" else None
                if src is not None:
                    ref = self.stage_ref(df.expand(src, self.global_args, self.escape), stage)
                    if ref is not None:
                        need(stages[ref])
        need(target)
        self.target_stage = target
        plan = [s for s in stages if s.index in needed]
        self.total = sum(1 + len(s.instructions) for s in plan)
        return plan

    def stage_ref(self, ref, current):
        """The index of the stage `ref` names (name or number), or None."""
        if ref.isdigit():
            i = int(ref)
            if i >= current.index:
                raise current.from_ins.error(f"COPY --from={ref}: stage {i} is not an earlier stage")
            return i
        for s in self.stages[:current.index]:
            if s.name == ref.lower():
                return s.index
        return None

    # -- run ------------------------------------------------------------------

    def build(self):
        plan = self.plan()
        for stage in plan:
            stage.result = self._build_stage(stage)
        state = self.target_stage.result
        unused = sorted(set(self.build_args) - self.used_args - set(PROXY_ARGS)
                        - set(platform_args()))
        if unused:
            self.emit(event="warning", message=f"one or more build args were not consumed: {', '.join(unused)}")
        config = state.config
        history = config.get("history") or []
        config["created"] = history[-1]["created"] if history else timestamp()
        record = self._unchanged_image(config, state.layers)
        if record is None:
            size = sum(self.store.layer_size(d) for d in state.layers)
            record = self.store.add_image(config, state.layers, self.tags[0] if self.tags else None, size)
            for t in self.tags[1:]:
                self.store.tag(record["id"], t)
        self.emit(event="image", id=record["id"], tags=self.tags)
        return record["id"]

    def _unchanged_image(self, config, layers):
        """The record the tags already name, if it is exactly this image (a
        fully cached rebuild then writes nothing)."""
        if not self.tags:
            return None
        try:
            records = [self.store.resolve(t) for t in self.tags]
        except (ImageNotFound, InvalidArgument):
            return None
        wanted = dict(config, rootfs={"type": "layers", "diff_ids": list(layers)})
        first = records[0]
        if all(r["id"] == first["id"] for r in records) and first["config"] == wanted \
                and all(self.store.has_layer(d) for d in layers):
            return first
        return None

    def _begin(self, text, stage):
        self.step += 1
        self.emit(event="step", step=self.step, total=self.total, instruction=text,
                  stage=stage.name or str(stage.index))
        return time.monotonic()

    def _build_stage(self, stage):
        ins = stage.from_ins
        t0 = self._begin(ins.original, stage)
        if stage.base_stage is not None:
            base = self.stages[stage.base_stage].result
            config = _json.loads(_json.dumps(base.config))
            state = State(base.layers, config, digest(["stage", base.key, base.layers]))
        elif stage.base.lower() == "scratch":
            state = State([], {"architecture": platform_args()["TARGETARCH"], "os": "linux",
                               "config": {}, "history": []}, digest(["scratch"]))
        else:
            self._check_platform(stage)
            record = self.store.get(stage.base)
            config = _json.loads(_json.dumps(record["config"]))
            config.pop("rootfs", None)
            config["history"] = base_history(config, record["layers"])
            state = State(record["layers"], config, digest(["image", record["id"]]))
        state.cfg.setdefault("Env", [DEFAULT_PATH_ENV] if stage.base.lower() == "scratch" else [])
        if not state.cfg.get("Env"):
            state.cfg["Env"] = [DEFAULT_PATH_ENV]
        triggers = state.cfg.pop("OnBuild", None) or []
        self.emit(event="done", step=self.step, cached=False, seconds=time.monotonic() - t0)
        for trigger in triggers:
            parsed = df.parse(f"FROM scratch\n{trigger}\n", "ONBUILD trigger")
            self._step(stage, state, parsed.instructions[1], onbuild=True)
        for ins in stage.instructions:
            self._step(stage, state, ins)
        return state

    def _check_platform(self, stage):
        if stage.platform is None:
            return
        plat = df.expand(stage.platform, self.global_args, self.escape)
        if plat not in (platform_args()["TARGETPLATFORM"], "$BUILDPLATFORM", "$TARGETPLATFORM"):
            raise stage.from_ins.error(f"FROM --platform={plat}: only the host's platform "
                                       f"({platform_args()['TARGETPLATFORM']}) can be built here")

    def _step(self, stage, state, ins, onbuild=False):
        text = ("ONBUILD " if onbuild else "") + ins.original
        if onbuild:
            self.total += 1
        t0 = self._begin(text, stage)
        handler = getattr(self, f"_do_{ins.cmd.lower()}")
        try:
            detail, produce = handler(stage, state, ins)
        except df.DockerfileError as e:
            if str(e).startswith(ins.filename):
                raise
            raise ins.error(str(e)) from None
        except OSError as e:
            raise ins.error(f"{ins.cmd}: {e.strerror or e}" + (f": {e.filename}" if e.filename else "")) from None
        key = digest([state.key, state.layers, ins.cmd, ins.original, ins.flags,
                       [h[1] for h in ins.heredocs], detail])
        entry = self.cache.get(key)
        cached = entry is not None
        if entry is None:
            try:
                layer = produce() if produce else None
            except OSError as e:
                raise ins.error(f"{ins.cmd}: {e.strerror or e}" + (f": {e.filename}" if e.filename else "")) from None
            except BuildError:
                raise
            except DiycError as e:
                if str(e).startswith(ins.filename):
                    raise
                raise ins.error(str(e)) from None
            entry = {"layer": layer, "created": timestamp()}
            self.cache.put(key, entry)
        layer = entry["layer"]
        if layer:
            state.layers.append(layer)
        history = {"created": entry["created"], "created_by": text + (" # buildkit" if produce else ""),
                   "comment": "buildkit.dockerfile.v0"}
        if not layer:
            history["empty_layer"] = True
        state.config.setdefault("history", []).append(history)
        state.key = key
        self.emit(event="done", step=self.step, cached=cached, seconds=time.monotonic() - t0)

    # -- metadata instructions: applied to the config, no layer ----------------

    def _env(self, state):
        return state.expand_env()

    def _do_env(self, stage, state, ins):
        pairs = df.key_values(ins, self._env(state), self.escape)
        env = state.env_dict()
        for k, v in pairs:
            env[k] = v
        state.cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
        return pairs, None

    def _do_label(self, stage, state, ins):
        pairs = df.key_values(ins, self._env(state), self.escape)
        labels = state.cfg.get("Labels") or {}
        labels.update(dict(pairs))
        state.cfg["Labels"] = labels
        return pairs, None

    def _do_maintainer(self, stage, state, ins):
        state.config["author"] = ins.args
        return ins.args, None

    def _do_arg(self, stage, state, ins):
        pairs = []
        for name, value in self._arg_pairs(ins, self._env(state)):
            if value is None:
                value = self.global_args.get(name)
                if value is None and name in platform_args():
                    value = platform_args()[name]
            state.args[name] = value
            pairs.append((name, value))
        return pairs, None

    def _do_workdir(self, stage, state, ins):
        path = df.expand(ins.args, self._env(state), self.escape)
        if not path.startswith("/"):
            path = (state.cfg.get("WorkingDir") or "/").rstrip("/") + "/" + path
        path = "/" + "/".join(clean_parts(path))
        state.cfg["WorkingDir"] = path
        view = state.view(self.store)
        parts = view.resolve(path)
        st = view.lstat(parts)
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                raise ins.error(f"WORKDIR {path}: exists and is not a directory")
            return path, None

        def produce():
            layer = LayerTar(self.root.tmp)
            try:
                CopyStep(self).add_parents(layer, view, parts + ["x"], time.time())
                return layer.store(self.store)
            except BaseException:
                layer.discard()
                raise
        return path, produce

    def _do_user(self, stage, state, ins):
        user = df.expand(ins.args, self._env(state), self.escape).strip()
        state.cfg["User"] = user
        return user, None

    def _do_expose(self, stage, state, ins):
        ports = state.cfg.get("ExposedPorts") or {}
        for p in df.expand_words(ins.args, self._env(state), self.escape):
            port, _, proto = p.partition("/")
            if not port.replace("-", "").isdigit() or proto not in ("", "tcp", "udp", "sctp"):
                raise ins.error(f"invalid port {p!r}")
            ports[f"{port}/{proto or 'tcp'}"] = {}
        state.cfg["ExposedPorts"] = ports
        return sorted(ports), None

    def _do_volume(self, stage, state, ins):
        paths = ins.json if ins.json is not None else df.expand_words(ins.args, self._env(state), self.escape)
        if ins.json is not None:
            paths = [df.expand(p, self._env(state), self.escape) for p in paths]
        volumes = state.cfg.get("Volumes") or {}
        for p in paths:
            if not p:
                raise ins.error("VOLUME specified can not be an empty string")
            volumes[p] = {}
        state.cfg["Volumes"] = volumes
        return paths, None

    def _do_stopsignal(self, stage, state, ins):
        sig = df.expand(ins.args, self._env(state), self.escape).strip()
        state.cfg["StopSignal"] = sig
        return sig, None

    def _do_shell(self, stage, state, ins):
        if ins.json is None or not ins.json:
            raise ins.error("SHELL requires the arguments to be in JSON form")
        state.cfg["Shell"] = list(ins.json)
        return ins.json, None

    def _command_form(self, state, ins):
        if ins.json is not None:
            return list(ins.json)
        return list(state.cfg.get("Shell") or DEFAULT_SHELL) + [ins.args]

    def _do_cmd(self, stage, state, ins):
        state.cfg["Cmd"] = self._command_form(state, ins) if ins.args else []
        state.cmd_set = True
        return state.cfg["Cmd"], None

    def _do_entrypoint(self, stage, state, ins):
        state.cfg["Entrypoint"] = self._command_form(state, ins) if ins.args else []
        # docker: an ENTRYPOINT resets a CMD inherited from the base image
        if not state.cmd_set:
            state.cfg["Cmd"] = None
        return state.cfg["Entrypoint"], None

    def _do_healthcheck(self, stage, state, ins):
        words = ins.args.split(None, 1)
        kind = words[0].upper() if words else ""
        if kind == "NONE":
            if len(words) > 1 or ins.flags:
                raise ins.error("HEALTHCHECK NONE takes no other arguments")
            state.cfg["Healthcheck"] = {"Test": ["NONE"]}
            return "NONE", None
        if kind != "CMD" or len(words) < 2:
            raise ins.error("HEALTHCHECK requires CMD COMMAND or NONE")
        rest = words[1]
        exec_form = df.exec_form(rest)
        test = ["CMD"] + exec_form if isinstance(exec_form, list) else ["CMD-SHELL", rest]
        hc = {"Test": test}
        for flag, field in (("interval", "Interval"), ("timeout", "Timeout"),
                            ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
            if flag in ins.flags:
                hc[field] = df.parse_duration(ins.flags[flag])
        if "retries" in ins.flags:
            if not ins.flags["retries"].isdigit():
                raise ins.error(f"invalid --retries {ins.flags['retries']!r}")
            hc["Retries"] = int(ins.flags["retries"])
        state.cfg["Healthcheck"] = hc
        return hc, None

    def _do_onbuild(self, stage, state, ins):
        triggers = state.cfg.get("OnBuild") or []
        triggers.append(ins.args)
        state.cfg["OnBuild"] = triggers
        return ins.args, None

    def _do_from(self, stage, state, ins):
        raise ins.error("FROM inside a stage")

    # -- RUN ----------------------------------------------------------------

    def _do_run(self, stage, state, ins):
        if ins.flags.get("mount"):
            raise ins.error("RUN --mount is not supported by diyc build")
        network = ins.flags.get("network", self.network)
        if network == "default":
            network = self.network
        if ins.heredocs and ins.args.strip().startswith("<<") and len(ins.heredocs) == 1 \
                and ins.args.strip().lstrip("<-").strip("'\"") == ins.heredocs[0][0]:
            argv = list(state.cfg.get("Shell") or DEFAULT_SHELL) + [ins.heredocs[0][1]]
        elif ins.heredocs:
            script = ins.args + "\n" + "".join(f"{body}{name}\n" for name, body, _ in ins.heredocs)
            argv = list(state.cfg.get("Shell") or DEFAULT_SHELL) + [script]
        else:
            argv = self._command_form(state, ins)
        if not argv or argv == list(state.cfg.get("Shell") or DEFAULT_SHELL) + [""]:
            raise ins.error("RUN requires a command")
        env = state.env_dict()
        run_env = {k: v for k, v in state.args.items() if v is not None and k not in env}
        for k in PROXY_ARGS:
            if k in self.build_args and k not in env:
                run_env[k] = self.build_args[k]
        # the RUN sees every ARG in scope: they are part of its key
        detail = [argv, sorted(run_env.items())]
        return detail, lambda: self._run(state, argv, run_env, network, ins)

    def _run(self, state, argv, run_env, network, ins):
        from .runtime import Container
        record = {"id": f"sha256:{state.key}", "config": state.config, "layers": list(state.layers)}
        cfg = state.cfg
        ctr = Container.create(record, argv, env=[f"{k}={v}" for k, v in run_env.items()],
                               workdir=cfg.get("WorkingDir") or None, user=cfg.get("User") or None,
                               entrypoint="", network=network, root=self.root)
        self.ran_containers += 1
        r = w = null = -1
        try:
            r, w = os.pipe()
            null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            try:
                ctr.start((null, w, w))
            finally:
                os.close(w)
                os.close(null)
            tail = self._relay_output(r)
            result = ctr.wait()
            if result.exit_code != 0:
                shown = " ".join(argv[len(DEFAULT_SHELL):] if argv[:2] == DEFAULT_SHELL else argv)
                last = f" (last output: {tail.strip().splitlines()[-1][:200]})" if tail.strip() else ""
                raise BuildError(f"{ins.filename}:{ins.line}: RUN {shown!r} failed with exit code "
                                 f"{result.exit_code}{last}", result.exit_code or 125)
            skip = [m["destination"].lstrip("/") for m in ctr.record["spec"].get("mounts", ())]
            layer = LayerTar(self.root.tmp)
            try:
                upper_to_layer(layer, f"{ctr.dir}/upper", skip)
                return layer.store(self.store)
            except BaseException:
                layer.discard()
                raise
        finally:
            if r >= 0:
                os.close(r)
            ctr.discard()

    def _relay_output(self, fd):
        """Emit the container's output line by line, and a `tick` every
        0.2 s of silence (a terminal display redraws its clock); -> the
        output's last bytes."""
        import select
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        started = time.monotonic()
        buf = b""
        tail = b""
        while True:
            if not poller.poll(200):
                self.emit(event="tick", step=self.step, seconds=time.monotonic() - started)
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            tail = (tail + chunk)[-4096:]
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self.emit(event="output", step=self.step, line=line.decode(errors="replace"))
        if buf:
            self.emit(event="output", step=self.step, line=buf.decode(errors="replace"))
        return tail.decode(errors="replace")

    # -- COPY / ADD -------------------------------------------------------------

    def _do_copy(self, stage, state, ins):
        return CopyStep(self).run(stage, state, ins, add=False)

    def _do_add(self, stage, state, ins):
        return CopyStep(self).run(stage, state, ins, add=True)


def _check_network(root, network):
    """Refuse a bad --network before any step runs (not at the first RUN)."""
    if network in ("none", "host", "bridge"):
        return
    if network.startswith("container:"):
        raise InvalidArgument("--network container:NAME cannot be used for a build")
    from .net import network as networking
    if networking.load(root, network) is None:
        raise NotFound(f"network {network} not found (see diyc network ls)")


# -- the entry point ---------------------------------------------------------

def build(context, tags=(), dockerfile=None, build_args=None, target=None, no_cache=False,
          network="none", progress=None, root=None):
    """Build an image from a Dockerfile; returns its id.

    context: a directory, or a binary file object of a tar of one.
    dockerfile: a path inside the context (default `Dockerfile`), or the
    Dockerfile's text as bytes.  progress: called with each event dict
    (`step`, `output`, `done`, `warning`, `image`)."""
    root = root if isinstance(root, Root) else Root(root)
    store = ImageStore(root.ensure())
    staging = None
    ctx = None
    try:
        if context is not None and not isinstance(context, (str, os.PathLike)):
            staging = f"{root.tmp}/buildctx-{os.getpid()}-{os.urandom(4).hex()}"
            os.mkdir(staging, 0o700)
            from .images.layers import unpack_layer
            unpack_layer(context, staging)
            context = staging
        if context is not None:
            ctx = ContextDir(os.fspath(context))
        if isinstance(dockerfile, bytes):
            text, name = dockerfile, "Dockerfile"
        else:
            name = dockerfile or "Dockerfile"
            if ctx is None:
                raise InvalidArgument("no build context and no Dockerfile")
            if os.path.isabs(name) or name.startswith("../"):
                try:
                    with open(name, "rb") as f:
                        text = f.read(16 << 20)
                except OSError as e:
                    raise InvalidArgument(f"cannot read Dockerfile {name}: {e.strerror}") from None
            else:
                try:
                    text = ctx.read_file(name)
                except NotFound:
                    raise InvalidArgument(f"cannot read {name}: no such file in the build context") from None
            name = os.path.basename(name)
        builder = Builder(root, ctx, text, name, tags, build_args, target, no_cache, network, progress)
        with store.adding():
            return builder.build()
    finally:
        if ctx is not None:
            ctx.close()
        if staging:
            remove_tree(staging)


def stdin_context(fileobj, dockerfile=None):
    """`diyc build -`: stdin is a tar of the context, or a Dockerfile alone
    (then there is no context).  -> (context, dockerfile) for build()."""
    import io
    data = fileobj.read()
    head = data[:262]
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")) or head[257:262] == b"ustar":
        return io.BytesIO(data), dockerfile
    if dockerfile is not None:
        raise InvalidArgument("diyc build -: stdin is not a tar archive, and -f names a file in it")
    return None, data
