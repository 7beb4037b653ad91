"""The Go template evaluator behind `--format` (diyc/templates.py) and
docker's formatter conventions around it (diyc/formatting.py): the
template language is a protocol of its own, so these run it on plain data,
with no container; test_format.py drives the same through the CLI.
Expected outputs are what Go's text/template and docker's formatter give
for the same template and data."""

import pytest

from diyc.formatting import (ago, bytes_size, format_each, format_rows, human_duration, human_size,
                             parse_rfc3339, rfc3339_nano, tabwrite)
from diyc.template_values import Context, Map, Method, TemplateError, go_float, go_sprintf
from diyc.templates import parse

DATA = {
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0, "OOMKilled": False},
    "Config": {"Env": ["A=1", "B=2"], "Cmd": ["sh", "-c", "echo hi"], "Entrypoint": None,
               "Labels": Map({"com.example.team": "infra", "tier": "web"})},
    "Mounts": [{"Source": "/srv", "Destination": "/data", "RW": True},
               {"Source": "/etc/x", "Destination": "/x", "RW": False}],
    "NetworkSettings": {"Networks": Map({"bridge": {"IPAddress": "10.88.0.2"}})},
    "Count": 3,
    "Ratio": 0.5,
}


def run(template, data=DATA):
    return parse(template).execute(data)


@pytest.mark.parametrize("template, expected", [
    ("{{.Name}}", "/web"),
    ("{{.State.Pid}}", "4242"),
    ("{{ .State.Status }}", "running"),
    ("{{.State.Running}} {{.State.OOMKilled}}", "true false"),
    ("{{json .State}}", '{"Status":"running","Running":true,"Pid":4242,"ExitCode":0,"OOMKilled":false}'),
    ("{{json .Config.Env}}", '["A=1","B=2"]'),
    ("{{json .Config.Entrypoint}}", "null"),
    ('{{index .Config.Labels "tier"}}', "web"),
    ('{{index .Config.Labels "missing"}}', ""),
    ("{{.Config.Labels.tier}}", "web"),
    ("{{.Config.Labels.missing}}", "<no value>"),
    ("{{.Config.Labels}}", "map[com.example.team:infra tier:web]"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Entrypoint}}", "<nil>"),
    ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/srv:/data /etc/x:/x "),
    ("{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}", "0=/data;1=/x;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "com.example.team=infra,tier=web,"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "10.88.0.2"),
    ("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if not .State.Running}}up{{else if .Count}}count{{else}}none{{end}}", "count"),
    ("{{with .State}}{{.Pid}}{{end}}", "4242"),
    ("{{with .Config.Entrypoint}}{{.}}{{else}}no entrypoint{{end}}", "no entrypoint"),
    ("{{upper .State.Status}} {{lower \"ABC\"}} {{title \"hello world\"}}", "RUNNING abc Hello World"),
    ('{{join .Config.Cmd " "}}', "sh -c echo hi"),
    ('{{split "a,b,c" ","}}', "[a b c]"),
    ("{{len .Mounts}} {{len .Name}} {{len .Config.Labels}}", "2 4 2"),
    ('{{printf "%s has pid %d" .Name .State.Pid}}', "/web has pid 4242"),
    ('{{printf "%-6s|%5d|%.2f|%q|%v|%x" "ab" 42 3.14159 "q" .Config.Env 255}}',
     'ab    |   42|3.14|"q"|[A=1 B=2]|ff'),
    ('{{.Name | printf "%q"}}', '"/web"'),
    ("{{.State.Status | upper | printf \"<%s>\"}}", "<RUNNING>"),
    ('{{eq .State.Status "exited" "running"}} {{ne .Count 3}} {{lt .Count 4}} {{ge .Ratio 0.5}}',
     "true false true true"),
    ("{{and .Count .Name}} {{or .Config.Entrypoint \"dflt\"}}", "/web dflt"),
    ("{{$n := .Name}}{{range .Mounts}}{{$n}}{{end}}", "/web/web"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{range .Mounts}}{{$.Name}}{{end}}", "/web/web"),
    ("{{(index .Mounts 1).Destination}}", "/x"),
    ('{{slice .Name 1}} {{index .Config.Cmd 2}}', "web echo hi"),
    ("a  {{- .Count -}}  b", "a3b"),
    ("{{/* a comment */}}x", "x"),
    ("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}};{{end}}", "sh;echo hi;"),
    ("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{break}}{{end}}{{.}};{{end}}", "sh;"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{.Ratio}} {{1e21}} {{0.00001}} {{100000.0}}", "0.5 1e+21 1e-05 100000"),
    ('{{"tab\\there"}} {{`raw\\t`}}', "tab\there raw\\t"),
    ("{{print 1 2 \"a\" 3}}", "1 2a3"),
    ("{{pad .Count 1 2}}|{{truncate .Name 2}}", " 3  |/w"),
    ("{{.}}", "{/web {running true 4242 0 false} {[A=1 B=2] [sh -c echo hi] <nil> "
              "map[com.example.team:infra tier:web]} [{/srv /data true} {/etc/x /x false}] "
              "{map[bridge:{10.88.0.2}]} 3 0.5}"),
])
def test_templates_as_go_runs_them(template, expected):
    assert run(template) == expected


@pytest.mark.parametrize("template, message", [
    ("{{.Nope}}", "can't evaluate field Nope"),
    ("{{.State.Nope}}", "can't evaluate field Nope"),
    ("{{.State.Pid.X}}", "can't evaluate field X in type int"),
    ("{{.Config.Labels.missing.deeper}}", "nil pointer evaluating .deeper"),
    ("{{.Name", "unclosed action"),
    ("{{if .Name}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{nosuchfunc .Name}}", 'function "nosuchfunc" not defined'),
    ("{{index .Mounts 7}}", "index out of range: 7"),
    ("{{range .Name}}{{end}}", "range can't iterate over /web"),
    ("{{$undefined}}", "undefined variable: $undefined"),
    ("{{len .Count}}", "len of type int"),
    ("{{.Name 1}}", "Name is not a method but has arguments"),
    ('{{eq .Count "3"}}', "incompatible types for comparison"),
    ('{{"unterminated}}', "unterminated quoted string"),
    ("{{(.Name}}", "unclosed left paren"),
    ("{{.Name)}}", "unexpected right paren"),
    ("{{|}}", "missing command"),
    ("{{}}", "missing value for command"),
    ("{{/* open }}", "unclosed comment"),
    ("{{define \"x\"}}{{end}}", "not supported"),
    # hostile sizes and depths: one line, not a traceback or all the memory
    ('{{printf "%c" 99999999999999999999}}', "error calling printf"),
    ('{{printf "%99999999999d" 1}}', "width larger than"),
    ('{{pad "x" 99999999999 0}}', "width larger than"),
    ("{{" + "(" * 3000 + "1" + ")" * 3000 + "}}", "nested too deeply"),
    ("{{if 1}}" * 1500 + "{{end}}" * 1500, "nested too deeply"),
])
def test_errors_are_one_clear_line(template, message):
    with pytest.raises(TemplateError) as info:
        run(template)
    text = str(info.value)
    assert text.startswith("template: ") and message in text and "\n" not in text, text
    assert info.value.exit_code == 125


def test_range_over_a_huge_number_is_lazy():
    assert run("{{range 10000000000}}x{{break}}{{end}}") == "x"
    assert run("{{range 0}}a{{else}}none{{end}}") == "none"


def test_an_unknown_field_names_the_fields_there_are():
    with pytest.raises(TemplateError) as info:
        run("{{.State.Pidd}}")
    assert "Pid" in str(info.value) and ":1:1:" in str(info.value)
    with pytest.raises(TemplateError) as info:
        run("line one\n  {{.Bogus}}")
    assert ":2:3:" in str(info.value)


def test_contexts_compute_fields_on_use_and_take_methods():
    used = []

    def size():
        used.append("size")
        return "1kB"
    row = Context("ContainerContext", {"ID": "abc", "Size": size,
                                       "Label": Method(lambda k: {"a": "1"}.get(k, ""))})
    assert run('{{.ID}} {{.Label "a"}}[{{.Label "b"}}]', row) == "abc 1[]"
    assert used == []                       # .Size not asked: not computed
    assert run("{{.Size}}", row) == "1kB" and used == ["size"]
    assert run("{{json .}}", row) == '{"ID":"abc","Size":"1kB"}'  # methods are not fields
    with pytest.raises(TemplateError) as info:
        run("{{.Nope}}", row)
    assert "in type ContainerContext" in str(info.value) and "ID, Size, Label" in str(info.value)
    with pytest.raises(TemplateError) as info:
        run('{{.Label "a" "b"}}', row)
    assert "wrong number of args for Label" in str(info.value)


def test_tabwriter_aligns_like_docker():
    """Go's tabwriter with docker's settings (minwidth 10, padding 3): the
    last cell of a line is not a column; a line with fewer cells ends a
    column block."""
    text = "CONTAINER ID\tNAMES\nabc\tweb\nabcdef123456\tdb\n"
    assert tabwrite(text) == ("CONTAINER ID   NAMES\n"
                              "abc            web\n"
                              "abcdef123456   db\n")
    assert tabwrite("A\tB\tC\nxx\t\tz\n") == ("A         B         C\n"
                                              "xx                  z\n")
    assert tabwrite("a\tb\nno tabs here\nlonger cell\tc\n") == (
        "a         b\nno tabs here\nlonger cell   c\n")


def test_table_format_prints_headers_and_json_lines():
    rows = [Context("ImageContext", {"Repository": "busybox", "Tag": "latest", "ID": "35942e92fbfa"}),
            Context("ImageContext", {"Repository": "a-much-longer-name", "Tag": "1", "ID": "0123456789ab"})]
    header = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID"}
    assert format_rows("table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}", rows, header) == (
        "REPOSITORY           TAG       IMAGE ID\n"
        "busybox              latest    35942e92fbfa\n"
        "a-much-longer-name   1         0123456789ab\n")
    assert format_rows("{{.Repository}}:{{.Tag}}", rows, header) == "busybox:latest\na-much-longer-name:1\n"
    assert format_rows("{{json .}}", rows[:1], header) == \
        '{"Repository":"busybox","Tag":"latest","ID":"35942e92fbfa"}\n'
    # the header row even with no rows, as docker
    assert format_rows("table {{.ID}}", [], header) == "IMAGE ID\n"
    # header functions pass the title through: `{{upper .Tag}}` is headed TAG
    assert format_rows("table {{upper .Tag}}", rows[:1], header) == "TAG\nLATEST\n"
    # a failing row prints nothing at all
    with pytest.raises(TemplateError):
        format_rows("table {{.Nope}}", rows, header)


def test_format_each_is_inspects_dash_f():
    assert format_each("{{.State.Pid}}", [DATA, DATA]) == "4242\n4242\n"
    assert format_each("json", [{"a": 1}]) == '{"a":1}\n'
    assert format_each("{{.Name}}\\t{{.Count}}", [DATA]) == "/web\t3\n"


def test_printf_verbs_and_mismatches_as_go():
    assert go_sprintf("%d%%", 50) == "50%"
    assert go_sprintf("%d", "x") == "%!d(string=x)"
    assert go_sprintf("%s") == "%!s(MISSING)"
    assert go_sprintf("%s", "a", 1) == "a%!(EXTRA int=1)"
    assert go_sprintf("%t %v", True, None) == "true <nil>"
    assert go_float(1.0) == "1" and go_float(2.5e-7) == "2.5e-07" and go_float(1e20) == "100000000000000000000"


def test_human_units_as_docker():
    assert [human_duration(s) for s in (0.2, 1, 59, 60, 119, 3599, 3600, 5400, 86400 * 3, 86400 * 20,
                                       86400 * 100, 86400 * 800)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "About a minute",
        "59 minutes", "About an hour", "2 hours", "3 days", "2 weeks", "3 months", "2 years"]
    assert ago(1000.0, now=1000.0 + 7200) == "2 hours ago"
    assert [human_size(n) for n in (0, 999, 2140160, 67108864, 1.5e9)] == ["0B", "999B", "2.14MB", "67.1MB",
                                                                            "1.5GB"]
    assert [bytes_size(n) for n in (0, 1536, 64 << 20, 3 << 30)] == ["0B", "1.5KiB", "64MiB", "3GiB"]


def test_times_as_docker_writes_them():
    assert rfc3339_nano(1795985405.5) == "2026-11-29T20:50:05.5Z"
    assert rfc3339_nano(1795985405.0) == "2026-11-29T20:50:05Z"
    assert rfc3339_nano(None) == "0001-01-01T00:00:00Z"
    assert parse_rfc3339("2026-11-29T20:50:05.5Z") == 1795985405.5
    assert parse_rfc3339("2026-11-29T21:50:05+01:00") == 1795985405
    assert parse_rfc3339("not a time") is None
