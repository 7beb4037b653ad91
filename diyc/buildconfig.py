"""The Dockerfile instructions that only change an image's config (ENV,
LABEL, CMD, ENTRYPOINT, USER, EXPOSE, VOLUME, SHELL, STOPSIGNAL,
HEALTHCHECK, ONBUILD, MAINTAINER): a base of builder.Builder, and what
`diyc commit --change` applies to a container's image config (ConfigChanges)."""

from . import dockerfile as df

DEFAULT_SHELL = ["/bin/sh", "-c"]


class ConfigSteps:
    """Each _do_X(stage, state, ins) -> (what the cache key sees, None): no
    layer.  Subclasses give `escape` (the Dockerfile's escape character)."""

    def apply_to_config(self, state, ins):
        """A metadata instruction (CMD, ENV, LABEL...) applied to state's
        config, outside a build (`diyc commit --change`)."""
        getattr(self, f"_do_{ins.cmd.lower()}")(None, state, ins)

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


class ConfigChanges(ConfigSteps):
    """`diyc commit --change`: instructions applied to a config outside a
    build (no stage, the escape character docker's default)."""

    escape = "\\"
