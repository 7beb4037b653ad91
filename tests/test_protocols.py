"""The hand-written protocols diyc keeps off the standard library for speed:
_json (the C scanner and encoder without the json package), the CLI's
option parser, and the netlink client's errors.  Each is checked against
the reference it stands in for (the json module, docker's flag grammar,
the kernel's own words)."""

import json
import math
import subprocess

import pytest

from conftest import DIYC, assert_one_line_error
from diyc import _json
from diyc.cli import RUN_OPTIONS
from diyc.options import FLAG, LIST, VALUE, option_table, parse
from diyc.errors import InvalidArgument

# -- _json ----------------------------------------------------------------------

ROUND_TRIPS = [
    {"a": "ünïcödé ☃ 𝄞 中文", "b": "\u0000\u001f\u007f\u2028\ud7ff"},
    ["\"quotes\" and \\backslashes\\", "\t\n\r\b\f", "/"],
    [0.1, 1e-300, 1.5e300, -0.0, 2.0 ** 53 + 1, 123456789.123456789, 5e-324],
    [0, -1, 2 ** 63 - 1, -2 ** 63, 10 ** 30, True, False, None],
    {"nested": [{"k": [[], {}, [{}]]}], "": ""},
    {"z": 1, "a": 2, "m": {"y": 1, "b": 2}},
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=range(len(ROUND_TRIPS)))
def test_json_round_trips_like_the_json_module(value):
    text = _json.dumps(value)
    assert text == json.dumps(value, sort_keys=True)      # the same bytes on disk
    assert json.loads(text) == value
    assert _json.loads(text) == json.loads(text)
    assert _json.loads(text.encode()) == value            # bytes in, as records are read
    floats = [v for v in value if isinstance(v, float)] if isinstance(value, list) else []
    for got, want in zip([v for v in _json.loads(text) if isinstance(v, float)], floats):
        assert math.copysign(1, got) == math.copysign(1, want)  # -0.0 stays negative


@pytest.mark.parametrize("text", [
    '"\\u00e9\\ud834\\udd1e"', '"\\ud834"', '[1.0, 1E2, -0e0, 1e-7]', '  {"a" : [ 1 , 2 ] }  ',
    'NaN', '[Infinity, -Infinity]', '{"a": 1, "a": 2}', '"\u00e9"',
])
def test_json_reads_what_the_json_module_reads(text):
    got, want = _json.loads(text), json.loads(text)
    assert repr(got) == repr(want)  # (repr: NaN is not equal to itself)


@pytest.mark.parametrize("text", [
    "", " ", "{", "[1,]", '{"a" 1}', "{'a': 1}", '"unterminated', '"\\x41"', "01", "1.",
    "[1] [2]", "tru", '{"a": 1}}', "\"a\nb\"", "-", "[" * 10 + "]" * 9,
])
def test_json_errors_are_value_errors_with_the_json_modules_words(text):
    with pytest.raises(ValueError) as reference:
        json.loads(text)
    with pytest.raises(ValueError) as ours:
        _json.loads(text)
    assert str(ours.value).startswith("invalid JSON: ")
    if not str(ours.value).endswith("extra data"):
        assert str(reference.value) in str(ours.value)  # where it went wrong, as json says


def test_json_writes_and_refuses_what_the_json_module_does():
    for value in ({"a": object()}, {b"k": 1}, [{1, 2}], {"a": 1, 2: 3}):
        with pytest.raises(TypeError):
            json.dumps(value, sort_keys=True)
        with pytest.raises(TypeError):
            _json.dumps(value)
    for value in ({2: 1, 10: True}, {None: "x"}, {2.5: 0}, (1, 2), float("nan"), float("-inf")):
        assert _json.dumps(value) == json.dumps(value, sort_keys=True)


def test_json_invalid_utf8_is_a_value_error():
    with pytest.raises(ValueError):
        _json.loads(b'{"a": "\xff"}')


# -- the CLI's option parser ----------------------------------------------------

def test_parser_joined_short_flags():
    opts, pos = parse(["-dit", "busybox", "sh"], RUN_OPTIONS)
    assert (opts, pos) == ({"detach": True, "interactive": True, "tty": True}, ["busybox", "sh"])


def test_parser_short_flag_takes_the_rest_as_its_value():
    opts, pos = parse(["-itm64m", "-eA=1", "-m=32m", "busybox"], RUN_OPTIONS)
    assert opts == {"interactive": True, "tty": True, "memory": "32m", "env": ["A=1"]}
    assert pos == ["busybox"]


def test_parser_long_flags_with_and_without_equals():
    opts, pos = parse(["--name=web", "--memory", "64m", "--env", "X=a=b", "--env=Y=",
                       "--rm=true", "--detach=false", "busybox"], RUN_OPTIONS)
    assert opts == {"name": "web", "memory": "64m", "env": ["X=a=b", "Y="], "rm": True,
                    "detach": False}
    assert pos == ["busybox"]


def test_parser_stops_at_the_image_and_at_double_dash():
    opts, pos = parse(["--rm", "busybox", "ls", "-l", "--rm"], RUN_OPTIONS)
    assert opts == {"rm": True} and pos == ["busybox", "ls", "-l", "--rm"]
    opts, pos = parse(["--rm", "--", "-image-like", "-x"], RUN_OPTIONS)
    assert opts == {"rm": True} and pos == ["-image-like", "-x"]
    table = option_table(("-f --force", "force", FLAG), ("-n", "n", VALUE), ("-l", "l", LIST))
    opts, pos = parse(["a", "-f", "b", "-n", "3", "--", "-f"], table, stop_at_positional=False)
    assert opts == {"force": True, "n": "3"} and pos == ["a", "b", "-f"]
    assert parse(["-", "x"], table, stop_at_positional=False) == ({}, ["-", "x"])


@pytest.mark.parametrize("args, message", [
    (["--nope"], "unknown flag: --nope"),
    (["-dq"], "unknown flag: -q"),
    (["--name"], "flag needs an argument: --name"),
    (["-m"], "flag needs an argument: -m"),
    (["--rm=yes"], "flag --rm takes no value"),
])
def test_parser_errors(args, message):
    with pytest.raises(InvalidArgument) as e:
        parse(args, RUN_OPTIONS)
    assert str(e.value) == message


@pytest.mark.parametrize("args, message", [
    (["--root"], "--root needs a directory"),
    (["--root="], "--root needs a directory"),
    (["--root", "/tmp/x"], None),      # no command: the usage, exit 125
    (["--bogus", "ps"], "unknown flag: --bogus"),
    (["run", "-dq", "busybox"], "unknown flag: -q"),
    (["run", "--name"], "flag needs an argument: --name"),
])
def test_cli_global_and_command_flag_errors(args, message):
    proc = subprocess.run(DIYC + args, capture_output=True, text=True, timeout=60)
    if message is None:
        assert proc.returncode == 125 and "Usage" in proc.stderr
        return
    assert_one_line_error(proc, contains=message)


# -- netlink --------------------------------------------------------------------

@pytest.fixture
def netns():
    import os
    name = f"diyctest-nl-{os.getpid()}-{os.urandom(3).hex()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_netlink_errors_carry_the_kernels_extended_ack(netns):
    """A request the kernel refuses raises OSError with its errno and, when
    the kernel explains itself (extended ack), its words: the same text
    `ip` prints."""
    import errno

    from diyc.net import netlink
    with netlink.Netlink.in_netns(netns) as nl:
        nl.add_bridge("diyct0")
        with pytest.raises(OSError) as e:
            nl.add_bridge("diyct0")
        assert e.value.errno == errno.EEXIST
        # a link of a kind no kernel has: the kernel says what is wrong
        body = (netlink.ifinfomsg() + netlink.attr(netlink.IFLA_IFNAME, "diyct1") +
                netlink.attr(netlink.IFLA_LINKINFO, [netlink.attr(netlink.IFLA_INFO_KIND, "nosuchkind")]))
        with pytest.raises(OSError) as e:
            nl.request(netlink.RTM_NEWLINK, body,
                       netlink.NLM_F_ACK | netlink.NLM_F_CREATE | netlink.NLM_F_EXCL)
    ip = subprocess.run(["ip", "-n", netns.rsplit("/", 1)[1], "link", "add", "diyct1", "type",
                         "nosuchkind"], capture_output=True, text=True)
    assert e.value.errno == errno.EOPNOTSUPP
    assert "Unknown device type" in str(e.value), str(e.value)
    assert "Unknown device type" in ip.stderr, ip.stderr  # the kernel's words, as `ip` shows them
