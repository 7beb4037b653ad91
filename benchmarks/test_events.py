"""The cost of one event in the journal (diyc/events.py): what each step
of a container's life (create, start, die, destroy) adds.  Target (issue
#12): < 0.1 ms an event.  Next to it, in the same group, the write the
start path already makes for the record of a --rm container (an atomic,
non-durable rewrite of container.json), for scale."""

import os

import pytest

diyc = pytest.importorskip("diyc")


class _Ctr:
    """What events.container_event reads of a container."""

    def __init__(self, root):
        self.root = root
        self.id = os.urandom(32).hex()
        self.record = {"image": "busybox", "name": "bench-events"}


@pytest.fixture
def events_root(bench_dir):
    from diyc.state import Root
    root = Root(str(bench_dir / "events-root")).ensure()
    yield root
    for name in ("events.log", "events.log.1"):
        try:
            os.unlink(f"{root.path}/{name}")
        except FileNotFoundError:
            pass


@pytest.mark.benchmark(group="events")
def test_diyc_event_write(benchmark, events_root):
    from diyc.events import container_event
    ctr = _Ctr(events_root)
    benchmark.pedantic(container_event, args=(ctr, "start"), rounds=2000, iterations=1,
                       warmup_rounds=20)


@pytest.mark.benchmark(group="events")
def test_diyc_record_write_for_scale(benchmark, events_root):
    from diyc.state import write_json
    record = {"id": os.urandom(32).hex(), "state": {"status": "running", "pid": 1}, "spec": {}}
    path = f"{events_root.path}/record.json"
    benchmark.pedantic(write_json, args=(path, record), kwargs={"durable": False}, rounds=2000,
                       iterations=1, warmup_rounds=20)
    os.unlink(path)
