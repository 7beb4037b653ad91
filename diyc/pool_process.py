"""What a pool's held container is told to run (diyc.pool): the
description pooled.c maps from a memfd at the release, packed here."""

import os
import struct

from . import config
from .errors import InvalidArgument


class Process:
    """What a held container is told to run: args, env, cwd, uid, gid,
    groups, and the capability masks for that user (effective,
    permitted), as pooled.c reads them (struct diyc_process)."""

    def __init__(self, args, env, cwd, uid, gid, groups, caps):
        self.args, self.env, self.cwd = args, env, cwd
        self.uid, self.gid, self.groups, self.caps = uid, gid, groups, caps
        # packed once (a described process is reused: pool.py caches them)
        self.own_hostname = not any(e.startswith("HOSTNAME=") for e in env)
        self.head = struct.pack(f"={len(groups)}I", *groups) + \
            b"".join(os.fsencode(s) + b"\0" for s in [cwd, *args])
        self.tail = b"".join(os.fsencode(s) + b"\0" for s in env)

    def description(self, stdio_mask, hostname):
        """The bytes of the memfd; HOSTNAME first unless env sets it, as
        at create."""
        envc = len(self.env)
        body = self.head + self.tail
        if self.own_hostname:
            envc += 1
            body = b"".join((self.head, b"HOSTNAME=", os.fsencode(hostname), b"\0", self.tail))
        return HEAD.pack(HEAD.size + len(body), self.uid, self.gid, len(self.groups),
                          len(self.args), envc, stdio_mask, 0, *self.caps) + body


HEAD = struct.Struct("=8I2Q")  # struct diyc_process (diyc.h)


def key_of(value):
    """A cmd or env of Pool.run as part of a dict key (TypeError: unhashable)."""
    if isinstance(value, dict):
        return ("dict", *value.items())
    return tuple(value) if isinstance(value, list) else value


def describe(warm, cmd, env, cwd, user):
    """Validate a process for a pool (its pool._Warm: image_config,
    options, env, resolve_user, caps_for) -> a Process."""
    from . import create as create_steps
    from .arguments import command, env as env_list
    cmd = config.check_text_list(command(cmd), "command") if cmd is not None else []
    if not cmd:
        raise InvalidArgument("no command given")
    args = create_steps.command_line(warm.image_config, cmd, warm.options.get("entrypoint"))
    if warm.options.get("init"):
        args = ["/dev/init", "--", *args]
    env = config.check_text_list(env_list(env), "env") if env is not None else []
    cwd = config.check_text(cwd, "cwd") if cwd is not None else \
        warm.options.get("workdir") or warm.image_config["WorkingDir"] or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"invalid working directory {cwd!r}: must be absolute")
    uid, gid, groups, home = warm.resolve_user(
        user if user is not None else warm.options.get("user") or warm.image_config["User"] or "0")
    env = config.merge_env(warm.image_config["Env"], warm.env + env, os.environ)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    return Process(args, env, cwd, uid, gid, groups, warm.caps_for(uid))
