"""Benchmark: our pipeline against the peer (`reader`) on the same local feed world.

    python bench/run.py                       # scenarios 1-4 at 1,000 feeds, with the peer
    python bench/run.py --feeds 200 --scenario cold --scenario warm
    python bench/run.py --scenario daemon --feeds 10000 --cycles 10   # scenario 5
    python bench/run.py --scenario profile    # where one feed's time goes, step by step
    python bench/run.py --scenario service --feeds 10000 --cycles 10   # `aggregator run` itself
    python bench/run.py --scenario cli        # whole `aggregator update` processes vs the peer's
    python bench/run.py --world mixed         # the same on publisher-shaped feeds (bench/mixed.py)

A feed world server (bench/world.py) runs as its own process; every measured cycle runs in a
fresh subprocess so that its peak RSS is its own. Figures are printed, never asserted: timing
belongs here, not in unit tests. The peer runs under its own interpreter, by default
/tmp/peer-venv/bin/python, which is created with `pip install reader sgmllib3k` if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_PYTHON = Path("/tmp/peer-venv/bin/python")
CLOCK = os.sysconf("SC_CLK_TCK")
SCENARIOS = ("cold", "warm", "changed", "publish", "daemon", "service", "cli", "profile")


# -- the world server ---------------------------------------------------------------------


@dataclass
class WorldServer:
    """The feed world process; `cpu()` reads its user+system seconds from /proc."""

    process: subprocess.Popen
    port: int

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=600) as r:
            return r.read().decode()


WORLD = "rsshub"  # set from --world by main(): every scenario's world serves this kind


@contextmanager
def world_server(feeds: int) -> Iterator[WorldServer]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "world.py"), "--feeds", str(feeds), "--world", WORLD],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"feed world did not start: {line!r}")
        yield WorldServer(process, int(line.split()[1]))
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- running one measured child -------------------------------------------------------------


@dataclass
class Measure:
    """One measured run: the child's own report plus CPU seen from outside."""

    label: str
    report: dict[str, Any]
    cpu: float  # user + system seconds of the child and its workers
    server_cpu: float

    @property
    def wall(self) -> float:
        return float(self.report["wall"])


def run_child(
    label: str,
    command: list[str],
    server: WorldServer | None,
    env: dict | None = None,
    database: Path | None = None,
) -> Measure:
    """One measured child, its report and its CPU."""
    server_before = server.cpu() if server else 0.0
    done, _, cpu = measured(label, command, database, env)
    server_cpu = (server.cpu() - server_before) if server else 0.0
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Measure(label, report, cpu, server_cpu)


def measured(
    label: str,
    command: list[str],
    database: Path | None,
    env: dict | None = None,
    settle: bool = True,
) -> tuple[subprocess.CompletedProcess, float, float]:
    """One process run to its end after `settle_caches` (unless not `settle`): its output,
    and its wall and CPU seconds (its own and its children's) measured from outside; a
    failure stops the bench."""
    if settle:
        settle_caches(database)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise RuntimeError(f"{label}: exit code {done.returncode}")
    return done, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def settle_caches(database: Path | None) -> None:
    """The previous cycle's files are written back to disk (the kernel doing that during
    the next cycle would be charged to whichever side came next) and the kernel's caches
    emptied; then `database`, when given, is read back into the page cache, as a running
    daemon has its database (and as opening our store did while it read the whole file to
    check it)."""
    os.sync()
    drop_caches()
    if database is not None and database.exists():
        with database.open("rb") as file:
            while file.read(1 << 20):
                pass


def drop_caches() -> bool:
    """Empty the kernel's page, dentry and inode caches when allowed (root), so that each
    measured run starts from the same state: on this VM creating a file cost 36 us with
    empty caches and 60-120 us after 300,000 files, more with gigabytes cached."""
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def ours(mode: str, **options: Any) -> list[str]:
    command = [sys.executable, str(HERE / "run.py"), "--child", mode]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    return command


def peer_python() -> Path:
    """The peer's interpreter, installing `reader` into its own venv the first time."""
    if PEER_PYTHON.exists():
        return PEER_PYTHON
    print(f"installing the peer into {PEER_PYTHON.parent.parent} (reader, sgmllib3k) ...")
    subprocess.run([sys.executable, "-m", "venv", str(PEER_PYTHON.parent.parent)], check=True)
    pip = [str(PEER_PYTHON), "-m", "pip", "install", "-q", "reader", "sgmllib3k"]
    subprocess.run(pip, check=True)
    return PEER_PYTHON


def peer(directory: Path, port: int, feeds: int, workers: int) -> list[str]:
    return [
        str(peer_python()),
        str(HERE / "peer.py"),
        "--dir",
        str(directory),
        "--port",
        str(port),
        "--feeds",
        str(feeds),
        "--workers",
        str(workers),
    ]


# -- printing -------------------------------------------------------------------------------


def show(scenario: str, measure: Measure, feeds: int) -> None:
    report = measure.report
    wall = measure.wall
    rss = f"{report['maxrss_mb']:.0f}"
    errors = f", {report['errors']} feeds failed" if report.get("errors") else ""
    if "workers_maxrss_mb" in report:
        rss += f" (+{report['workers_maxrss_mb']:.0f}/worker; sum {report['peak_sum_mb']:.0f})"
    print(
        f"{scenario:<9} {measure.label:<24} wall {wall:8.2f} s  {feeds / wall:8.1f} feeds/s  "
        f"{report.get('new_entries', 0) / wall:9.0f} new entries/s "
        f"({report.get('new_entries', 0)}{errors})  "
        f"CPU {measure.cpu:7.2f} s ({measure.cpu / wall / os.cpu_count() * 100:3.0f}% of "
        f"{os.cpu_count()} cores)  peak RSS {rss} MB  "
        f"server CPU {measure.server_cpu:5.2f} s "
        f"({measure.server_cpu / wall * 100:.0f}% of a core)",
        flush=True,
    )


def ratio(scenario: str, mine: Measure, theirs: Measure) -> None:
    print(
        f"{scenario:<9} ratio {mine.label} / peer: {theirs.wall / mine.wall:.2f}x the peer's "
        f"feeds/s (wall {mine.wall:.2f} s vs {theirs.wall:.2f} s)",
        flush=True,
    )


# -- the scenarios ------------------------------------------------------------------------


def run_cycles(args: argparse.Namespace, base: Path) -> None:
    """Scenarios 1-3: cold, warm all-304, warm with 10% changed, for us and the peer."""
    wanted = [s for s in ("cold", "warm", "changed") if s in args.scenario]
    if not wanted:
        return
    with world_server(args.feeds) as server:

        def side(
            label: str, folder: str, **options: int
        ) -> tuple[str, Callable[[], list[str]], Path]:
            directory = base / folder
            command = ours("cycle", dir=directory, port=server.port, feeds=args.feeds, **options)
            return label, lambda: command, directory / "data" / "aggregator.db"

        sides = [
            # What the peer does: fetch, parse, store.
            side("ours fetch+parse+store", "ours-store", outputs=0),
            # Scenario 1 as the issue puts it: documents and the merged feeds included.
            side("ours + docs + merged", "ours-merged", outputs=1, groups=0),
            # Everything `update` does by default: also a feed per source and per category.
            side("ours + docs + all feeds", "ours-full", outputs=1, groups=1),
        ]
        if args.peer:
            sides.append(
                (
                    "peer reader",
                    lambda: peer(base / "peer", server.port, args.feeds, args.workers),
                    base / "peer" / "reader.sqlite",
                )
            )
        for scenario in ("cold", "warm", "changed"):
            if scenario == "changed":
                server.get("/_bump?every=10")
            if scenario not in wanted and scenario != "cold":
                continue
            results = [
                run_child(label, make(), server, database=None if args.cold_cache else database)
                for label, make, database in sides
            ]
            if scenario not in wanted:
                continue  # cold was only run to prepare the warm databases
            for measure in results:
                show(scenario, measure, args.feeds)
            if args.peer:
                for measure in results[:-1]:
                    ratio(scenario, measure, results[-1])


def run_publish(args: argparse.Namespace, base: Path) -> None:
    """Scenario 4: RSS + Atom of the newest 1,000 from a database of 100,000 entries."""
    if "publish" not in args.scenario:
        return
    directory = base / "publish"
    run_child("seed", ours("seed", dir=directory, entries=args.entries), None)
    measure = run_child("ours publish", ours("publish", dir=directory, items=1000), None)
    report = measure.report
    query, write = report["query"] * 1000, report["write"] * 1000
    print(
        f"publish   newest 1000 of {report['entries']} entries, merged RSS + Atom: "
        f"from scratch query {query:.0f} ms + build {report['build'] * 1000:.0f} ms + write "
        f"{write:.0f} ms = {query + report['build'] * 1000 + write:.0f} ms; "
        f"republished after 5 new entries query {query:.0f} ms + build "
        f"{report['rebuild'] * 1000:.0f} ms + write {write:.0f} ms = "
        f"{query + report['rebuild'] * 1000 + write:.0f} ms",
        flush=True,
    )
    print(
        f"publish   every output (merged RSS + Atom + JSON, group feeds checked): first "
        f"{report['first'] * 1000:.0f} ms (builds every group feed), then best of "
        f"{report['repeats']} {report['wall'] * 1000:.0f} ms; RSS {report['maxrss_mb']:.0f} MB; "
        f"peer: no merged feed, n/a",
        flush=True,
    )


def run_daemon(args: argparse.Namespace, base: Path) -> None:
    """Scenario 5: many sources, several cycles in one long-lived process, memory watched."""
    if "daemon" not in args.scenario:
        return
    with world_server(args.feeds) as server:
        command = ours(
            "daemon",
            dir=base / "daemon",
            port=server.port,
            feeds=args.feeds,
            cycles=args.cycles,
        )
        measure = run_child("ours daemon", command, server)
        for cycle in measure.report["cycles"]:
            print(
                f"daemon    N={args.feeds} cycle {cycle['cycle']:>2} ({cycle['kind']:<7}) "
                f"wall {cycle['wall']:7.2f} s  {args.feeds / cycle['wall']:7.1f} feeds/s  "
                f"new {cycle['new']:>6}  RSS after: main {cycle['rss_mb']:.0f} MB, "
                f"with workers {cycle['rss_sum_mb']:.0f} MB",
                flush=True,
            )
        report = measure.report
        print(
            f"daemon    N={args.feeds} total wall {report['wall']:.1f} s, CPU {measure.cpu:.1f} s; "
            f"peak RSS main {report['maxrss_mb']:.0f} MB, largest worker "
            f"{report['workers_maxrss_mb']:.0f} MB, sampled peak of the sum "
            f"{report['peak_sum_mb']:.0f} MB; server CPU {measure.server_cpu:.1f} s",
            flush=True,
        )
        if args.peer and args.peer_daemon:
            theirs = run_child(
                "peer reader",
                peer(base / "peer-daemon", server.port, args.feeds, args.workers),
                server,
            )
            show("cold-10k", theirs, args.feeds)
            first = report["cycles"][0]["wall"]
            print(
                f"cold-10k  ratio ours (docs+publish) / peer: {theirs.wall / first:.2f}x",
                flush=True,
            )


def run_service(args: argparse.Namespace, base: Path) -> None:
    """Scenario 5 under the real service: `aggregator run`, the installed command as systemd
    starts it, on N sources for `--cycles` polling rounds, its process tree's memory sampled
    from outside. The world counts the feed requests it answered: round k is over when it
    has answered k x N; every second round starts with 10% of the sources changed. The
    feeds' `<ttl>` is 5 minutes, so the rounds are ~5 minutes apart. At the end the service
    is stopped with SIGTERM, and the database and documents are counted against what the
    world served: nothing lost, nothing twice."""
    if "service" not in args.scenario:
        return
    directory = base / "service"
    with world_server(args.feeds) as server:
        config = write_config(
            directory,
            server.port,
            args.feeds,
            extra=("interval: 5m", "server:", "  host: 127.0.0.1", f"  port: {free_port()}"),
        )
        settle_caches(None)
        log = (directory / "service.log").open("w")
        started = time.monotonic()
        service = subprocess.Popen(
            [*aggregator_command(), "run", "--config", str(config), "--log-level", "warning"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        peak, peak_main, cycle, bumps = 0, 0, 0, 0
        round_started = started
        try:
            while cycle < args.cycles:
                if service.poll() is not None:
                    raise RuntimeError(f"aggregator run exited with {service.returncode}")
                time.sleep(0.5)
                tree = [service.pid, *descendants(service.pid)]
                sizes = [rss_kb(pid) for pid in tree]
                peak, peak_main = max(peak, sum(sizes)), max(peak_main, sizes[0])
                full, not_modified = map(int, server.get("/_stats").split())
                if full + not_modified < (cycle + 1) * args.feeds:
                    continue
                cycle += 1
                now = time.monotonic()
                print(
                    f"service   N={args.feeds} round {cycle:>2} done at {now - started:7.1f} s "
                    f"(took {now - round_started:6.1f} s; answered {full} in full, "
                    f"{not_modified} with 304)  RSS now: main {sizes[0] / 1024:.0f} MB, tree of "
                    f"{len(tree)} {sum(sizes) / 1024:.0f} MB; peak so far {peak / 1024:.0f} MB",
                    flush=True,
                )
                round_started = now
                if cycle % 2 == 1 and cycle < args.cycles:
                    server.get("/_bump?every=10")  # the next round finds 10% changed
                    bumps += 1
        finally:
            service.terminate()
            code = service.wait(timeout=120)
            log.close()
        print(
            f"service   N={args.feeds} {cycle} rounds in {time.monotonic() - started:.0f} s; "
            f"sampled peak of the tree {peak / 1024:.0f} MB (main {peak_main / 1024:.0f} MB); "
            f"stopped with SIGTERM: exit {code}",
            flush=True,
        )
        lines = (directory / "service.log").read_text(encoding="utf-8").splitlines()
        problems = [line for line in lines if " WARNING " in line or " ERROR " in line]
        print(f"service   {len(problems)} warnings and errors logged", flush=True)
        for line in problems[:5]:
            print(f"service     {line}", flush=True)
        count_service_outputs(directory, int(server.get("/_items")))


def aggregator_command() -> list[str]:
    """The installed command, as a user or systemd runs it."""
    installed = Path(sys.executable).with_name("aggregator")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "aggregator"]


def run_cli(args: argparse.Namespace, base: Path) -> None:
    """Cycles as a user times them: whole processes started and waited for from outside
    (interpreter start, imports, opening the database included), `aggregator update` with
    its default outputs (documents, merged feeds, a feed per source) against the peer's
    update process, cold, all 304, then 10% changed. `again` is the all-304 pass run once
    more straight after the first, its program's files and database still in the kernel's
    cache, as when `update` runs every few minutes; every other cycle starts with the
    caches dropped."""
    if "cli" not in args.scenario:
        return
    ours_database = None if args.cold_cache else base / "cli" / "data" / "aggregator.db"
    peer_database = None if args.cold_cache else base / "cli-peer" / "reader.sqlite"
    walls: dict[tuple[str, str], list[float]] = {}
    with world_server(args.feeds) as server:
        config = write_config(base / "cli", server.port, args.feeds)
        for scenario in ("cold", *("warm", "again") * args.repeat, "changed"):
            if scenario == "changed":
                server.get("/_bump?every=10")
            settle = scenario != "again"
            update = [*aggregator_command(), "update", "--config", str(config)]
            served = server.cpu()
            _, *mine = measured("aggregator update", update, ours_database, settle=settle)
            served = server.cpu() - served  # the world's share: it must not be what is timed
            walls.setdefault(("ours", scenario), []).append(mine[0])
            line = (
                f"cli       {scenario:<8} aggregator update {mine[0]:7.2f} s "
                f"(CPU {mine[1]:6.2f} s; world {served / mine[0] * 100:.0f}% of a core)"
            )
            if args.peer:
                command = peer(base / "cli-peer", server.port, args.feeds, args.workers)
                _, *theirs = measured("peer", command, peer_database, settle=settle)
                walls.setdefault(("peer", scenario), []).append(theirs[0])
                line += (
                    f"  peer process {theirs[0]:7.2f} s (CPU {theirs[1]:6.2f} s)  "
                    f"ratio {theirs[0] / mine[0]:.2f}x"
                )
            print(line, flush=True)
    if args.repeat > 1:
        for scenario in ("warm", "again"):
            line = f"cli       {scenario:<8} median of {args.repeat}:"
            for side in ("ours", "peer"):
                if (side, scenario) in walls:
                    times = sorted(walls[side, scenario])
                    line += (
                        f"  {side} {statistics.median(times):.2f} s "
                        f"({times[0]:.2f}-{times[-1]:.2f})"
                    )
            print(line, flush=True)


def count_service_outputs(directory: Path, expected: int) -> None:
    """Entries and documents against the distinct items the world listed (50 a feed in the
    RSSHub world, 5 more in every tenth feed per bump; the world counts them). In the mixed
    world a broken feed's recovered document may hold fewer items than it listed."""
    import sqlite3

    database = sqlite3.connect(directory / "data" / "aggregator.db")
    (entries,) = database.execute("SELECT count(*) FROM entries").fetchone()
    (distinct,) = database.execute("SELECT count(DISTINCT identity) FROM entries").fetchone()
    database.close()
    documents = sum(1 for _ in (directory / "documents").rglob("*.md"))
    print(
        f"service   entries {entries} ({distinct} distinct), documents {documents}, expected "
        f"{expected}: {'OK' if entries == distinct == documents == expected else 'MISMATCH'}",
        flush=True,
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of all its threads, recursively)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def fast_path_table(feeds: int) -> None:
    """For the mixed world: which reader `parse_feed` takes for one generated feed of each
    shape (as aggregator/sources/parse.py tries them: the JSON Feed reader, the fast
    RSS/Atom path, else feedparser), and how many feeds of the world have that shape."""
    sys.path.insert(0, str(HERE))
    import mixed  # type: ignore[import-not-found]
    from world import PARAGRAPHS  # type: ignore[import-not-found]

    from aggregator.sources import parse as parse_module
    from aggregator.sources.parse_fast import parse_plain_feed
    from aggregator.sources.parse_json import read_json_feed

    text = mixed.Text(PARAGRAPHS)
    counts = mixed.counts(feeds)
    fast_feeds = 0
    print("fastpath  shape        path taken         fast  feeds  items  KB/feed", flush=True)
    for shape, index in mixed.first_of_each_shape(feeds).items():
        body, content_type = mixed.feed_document(index, 0, text)
        url = f"http://127.0.0.1/feed/{index}.xml"
        headers = {"content-location": url, "content-type": content_type.decode()}
        # parse_feed's own first steps, then its readers in its order.
        prepared = parse_module._drop_invalid_references(parse_module._defuse_entities(body))
        try:
            if read_json_feed(prepared, headers) is not None:
                path, fast = "JSON Feed reader", "n/a"
            elif parse_plain_feed(prepared, headers):
                path, fast = "fast path (lxml)", "yes"
                fast_feeds += counts[shape]
            else:
                path, fast = "feedparser", "no"
        except Exception as exc:  # a ParseError from a reader: what parse_feed would raise
            path, fast = f"error {type(exc).__name__}", "no"
        print(
            f"fastpath  {shape:<12} {path:<18} {fast:<5} {counts[shape]:>5}  "
            f"{mixed.items_of(index):>5}  {len(body) / 1024:7.0f}",
            flush=True,
        )
    print(
        f"fastpath  {fast_feeds} of {feeds} feeds take the fast path "
        f"({fast_feeds / feeds * 100:.0f}%)",
        flush=True,
    )


def run_profile(args: argparse.Namespace, base: Path) -> None:
    if "profile" not in args.scenario:
        return
    with world_server(min(args.feeds, 200)) as server:
        measure = run_child(
            "profile",
            ours("profile", dir=base / "profile", port=server.port, feeds=min(args.feeds, 200)),
            server,
        )
    report = measure.report
    total = sum(report["steps"].values())
    print(f"profile   CPU per feed of 50 new entries, one process, {report['feeds']} feeds:")
    for step, seconds in report["steps"].items():
        print(f"profile     {step:<28} {seconds * 1000:7.2f} ms  {seconds / total * 100:5.1f}%")
    print(f"profile     {'total':<28} {total * 1000:7.2f} ms", flush=True)


# -- children: the measured side ------------------------------------------------------------


def write_config(
    directory: Path,
    port: int,
    feeds: int,
    max_items: int = 100,
    groups: bool = True,
    extra: tuple[str, ...] = (),
) -> Path:
    """A config.yaml for `feeds` sources of the world at `port` (written once per folder);
    `groups=False` switches the per-source and per-category feeds off; `extra` lines go
    at the top level."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yaml"
    if not path.exists():
        lines = [
            "database: data/aggregator.db",
            "documents: documents",
            "workers: 8",
            *extra,
            "feed:",
            "  folder: public",
            f"  max_items: {max_items}",
            *([] if groups else ["  category_feeds: false", "  source_feeds: false"]),
            "sources:",
        ]
        for index in range(feeds):
            lines.append(f"  - name: s{index}")
            lines.append(f"    url: http://127.0.0.1:{port}/feed/{index}.xml")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class RssSampler:
    """Peak of (our RSS + every child's RSS), sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_with_children())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 1024


def rss_kb(pid: int | str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_with_children() -> int:
    return rss_kb("self") + sum(rss_kb(pid) for pid in descendants(os.getpid()))


def usage_report() -> dict[str, float]:
    return {
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def child_cycle(args: argparse.Namespace) -> dict[str, Any]:
    from aggregator.config.settings import load_config
    from aggregator.poll.pipeline import Pipeline
    from aggregator.store.database import Store

    config = load_config(write_config(args.dir, args.port, args.feeds, groups=bool(args.groups)))
    sampler = RssSampler()
    store = Store(config.paths.database)
    before = store.count_entries()
    pipeline = Pipeline(config, store)
    started = time.perf_counter()
    results = pipeline.update_all(write_outputs=bool(args.outputs))
    wall = time.perf_counter() - started
    pipeline.close()
    after = store.count_entries()
    store.close()
    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    return {
        "wall": wall,
        "new_entries": after - before,
        "statuses": statuses,
        "peak_sum_mb": sampler.stop(),
        **usage_report(),
    }


def child_seed(args: argparse.Namespace) -> dict[str, Any]:
    """A database of `entries` entries over entries/50 sources, stored through the store."""
    sys.path.insert(0, str(HERE))
    from datetime import UTC, datetime, timedelta

    from world import PARAGRAPHS  # type: ignore[import-not-found]

    from aggregator.config.settings import load_config
    from aggregator.models import Entry
    from aggregator.outputs.documents import document_name
    from aggregator.poll.decide import content_hash
    from aggregator.store.database import Store
    from aggregator.store.rows import SourceState

    feeds = max(1, args.entries // 50)
    config = load_config(write_config(args.dir, 1, feeds, max_items=1000))
    store = Store(config.paths.database)
    store.sync_sources((s.name, s.url) for s in config.sources)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    body = "\n".join(PARAGRAPHS[:16])
    now = datetime.now(UTC)
    for index, source in enumerate(config.sources):
        new = []
        for number in range(50):
            date = start + timedelta(minutes=number * 997 + index * 13)
            entry = Entry(
                source=source.name,
                identity=f"https://chinese.example.net/news/{index}/story-{number}",
                link=f"https://chinese.example.net/news/{index}/story-{number}",
                title=f"第{number}条 新闻 {index}",
                author=None,
                published=date,
                updated=None,
                content=f"<p>{index}-{number}</p>\n{body}",
                image=None,
            )
            name = document_name(entry.source, entry.identity, entry.title, date)
            new.append((entry, content_hash(entry), name))
        store.save_poll(SourceState(source.name, source.url, status="ok"), new, [], now)
    count = store.count_entries()
    store.close()
    return {"wall": 0.0, "entries": count, **usage_report()}


def child_publish(args: argparse.Namespace) -> dict[str, Any]:
    from aggregator.config.settings import load_config
    from aggregator.outputs.feeds import FeedInfo, Fragments, build_feeds, publish_feeds
    from aggregator.poll.pipeline import Pipeline
    from aggregator.store.database import Store

    config = load_config(args.dir / "config.yaml")
    assert config.feed.max_items == args.items
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store)
    timings = []
    for _ in range(6):
        started = time.perf_counter()
        pipeline.publisher.publish()
        timings.append(time.perf_counter() - started)
    # The same work in its three parts, to show where publishing spends its time: built
    # from scratch (a fresh process), and republished by the daemon after 5 new entries,
    # with the other 995 entries' fragments kept from the publish before.
    feed = config.feed
    info = FeedInfo(feed.title, feed.link, feed.description, feed.rss_name, feed.atom_name)
    entries = store.newest_entries(feed.max_items)
    before = store.newest_entries(feed.max_items + 5)[5:]

    def best(step: Callable[[Any], object], prepare: Callable[[], Any] = lambda: None) -> float:
        times = []
        for _ in range(5):
            prepared = prepare()
            started = time.perf_counter()
            step(prepared)
            times.append(time.perf_counter() - started)
        return min(times)

    def published_before() -> Fragments:
        fragments = Fragments()
        build_feeds(info, before, pipeline.sources, fragments)
        return fragments

    query = best(lambda _: store.newest_entries(feed.max_items))
    build = best(lambda _: build_feeds(info, entries, pipeline.sources))
    rebuild = best(
        lambda fragments: build_feeds(info, entries, pipeline.sources, fragments),
        published_before,
    )
    merged = best(lambda _: publish_feeds(config.paths.public, info, entries, pipeline.sources))
    count = store.count_entries()
    pipeline.close()
    store.close()
    return {
        "wall": min(timings[1:]),
        "first": timings[0],
        "repeats": len(timings) - 1,
        "entries": count,
        "query": query,
        "build": build,
        "rebuild": rebuild,
        "write": max(0.0, merged - build),
        **usage_report(),
    }


def child_daemon(args: argparse.Namespace) -> dict[str, Any]:
    """Cycles as the daemon runs them: one Pipeline, update_all again and again."""
    from aggregator.config.settings import load_config
    from aggregator.poll.pipeline import Pipeline
    from aggregator.store.database import Store

    config = load_config(write_config(args.dir, args.port, args.feeds, groups=bool(args.groups)))
    sampler = RssSampler()
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store)
    cycles = []
    started = time.perf_counter()
    for cycle in range(1, args.cycles + 1):
        kind = "cold" if cycle == 1 else ("changed" if cycle % 2 == 0 else "304")
        if kind == "changed":
            with urllib.request.urlopen(
                f"http://127.0.0.1:{args.port}/_bump?every=10", timeout=600
            ) as answer:
                answer.read()
        before = store.count_entries()
        t0 = time.perf_counter()
        pipeline.update_all()
        wall = time.perf_counter() - t0
        cycles.append(
            {
                "cycle": cycle,
                "kind": kind,
                "wall": wall,
                "new": store.count_entries() - before,
                "rss_mb": rss_kb("self") / 1024,
                "rss_sum_mb": rss_with_children() / 1024,
            }
        )
        with open(args.dir / "cycles.jsonl", "a", encoding="utf-8") as progress:
            progress.write(json.dumps(cycles[-1]) + "\n")  # to follow a long run
    wall = time.perf_counter() - started
    pipeline.close()
    store.close()
    return {"wall": wall, "cycles": cycles, "peak_sum_mb": sampler.stop(), **usage_report()}


def child_profile(args: argparse.Namespace) -> dict[str, Any]:
    """The real step functions, one feed after another in one process, each step timed in
    CPU seconds: where a cold feed's time goes before any parallelism."""
    import feedparser

    from aggregator.config.settings import load_config
    from aggregator.models import HttpState
    from aggregator.outputs.feeds import FeedInfo, publish_feeds
    from aggregator.poll.decide import sort_entries as decide
    from aggregator.poll.pipeline import Pipeline
    from aggregator.sources import parse as parse_module
    from aggregator.sources.fetch import fetch_source
    from aggregator.store.database import Store

    config = load_config(write_config(args.dir, args.port, args.feeds))
    store = Store(config.paths.database)
    pipeline = Pipeline(config, store, parse_processes=0)
    steps = dict.fromkeys(
        [
            "fetch (requests)",
            "parse (fast RSS path)",
            "sanitise + normalise",
            "decide (hash, names)",
            "store (one transaction)",
            "documents (render+write)",
            "publish (100 items)",
        ],
        0.0,
    )
    reading_time = [0.0]

    def timed(function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            t = time.process_time()
            try:
                return function(*a, **k)
            finally:
                reading_time[0] += time.process_time() - t

        return run

    # The XML reading itself: the fast RSS path, and feedparser for what it does not take.
    parse_module.feedparser.parse = timed(feedparser.parse)  # type: ignore[assignment]
    parse_module.parse_plain_feed = timed(parse_module.parse_plain_feed)  # type: ignore[assignment]
    clock = time.process_time
    for source in config.sources:
        t0 = clock()
        fetched = fetch_source(pipeline.session, source.url, HttpState(), pipeline.limits)
        t1 = clock()
        assert fetched.body is not None
        reading_time[0] = 0.0
        parsed = parse_module.parse_feed(fetched.body, source, fetched.url, fetched.headers)
        t2 = clock()
        known = store.known_entries(source.name, [e.identity for e in parsed.entries])
        from datetime import UTC, datetime

        decision = decide(parsed.entries, known, datetime.now(UTC))
        t3 = clock()
        state = store.source_state(source.name)
        assert state is not None
        store.save_poll(state, decision.new, decision.changed, datetime.now(UTC))
        t4 = clock()
        pipeline.publisher.write_documents()
        t5 = clock()
        steps["fetch (requests)"] += t1 - t0
        steps["parse (fast RSS path)"] += reading_time[0]
        steps["sanitise + normalise"] += (t2 - t1) - reading_time[0]
        steps["decide (hash, names)"] += t3 - t2
        steps["store (one transaction)"] += t4 - t3
        steps["documents (render+write)"] += t5 - t4
    feed = config.feed
    info = FeedInfo(feed.title, feed.link, feed.description, feed.rss_name, feed.atom_name)
    t0 = clock()
    for _ in range(5):
        publish_feeds(config.paths.public, info, store.newest_entries(100), pipeline.sources)
    steps["publish (100 items)"] = (clock() - t0) / 5 / len(config.sources)
    count = len(config.sources)
    pipeline.close()
    store.close()
    per_feed = {
        step: seconds / count if "publish" not in step else seconds
        for step, seconds in steps.items()
    }
    return {"wall": 0.0, "feeds": count, "steps": per_feed, **usage_report()}


CHILDREN: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "cycle": child_cycle,
    "seed": child_seed,
    "publish": child_publish,
    "daemon": child_daemon,
    "profile": child_profile,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="cold, warm, changed, publish (default: all four), daemon (scenario 5: update_all "
        "in one process), service (scenario 5: `aggregator run`), cli (whole processes), profile",
    )
    parser.add_argument("--no-peer", dest="peer", action="store_false")
    parser.add_argument(
        "--peer-daemon",
        action="store_true",
        help="also run the peer at --feeds in the daemon scenario",
    )
    parser.add_argument("--workers", type=int, default=8, help="the peer's update_feeds workers")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="cli: run the two all-304 cycles (warm, again) this many times each, alternately, "
        "and print their medians",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--world",
        choices=("rsshub", "mixed"),
        default="rsshub",
        help="the feeds every scenario's world serves: RSSHub-shaped (default) or shaped "
        "like what real publishers send (bench/mixed.py, issue 16)",
    )
    parser.add_argument(
        "--cold-cache",
        action="store_true",
        help="leave each side's database out of the page cache before a measured cycle",
    )
    # Child-only options.
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--outputs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--groups", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)), flush=True)
        return
    args.scenario = args.scenario or ["cold", "warm", "changed", "publish"]
    global WORLD
    WORLD = args.world
    base = args.keep or Path(tempfile.mkdtemp(prefix="aggregator-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, python "
        f"{sys.version.split()[0]}, N={args.feeds}, world {args.world}, work in {base}; "
        "kernel caches "
        f"{'dropped' if drop_caches() else 'NOT dropped (not root)'} before each measured run"
        + ("" if args.cold_cache else ", then each side's database read back in"),
        flush=True,
    )
    if args.world == "mixed":
        fast_path_table(args.feeds)
    try:
        run_profile(args, base)
        run_cycles(args, base)
        run_publish(args, base)
        run_daemon(args, base)
        run_service(args, base)
        run_cli(args, base)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
