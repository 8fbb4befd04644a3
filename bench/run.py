"""Run benchmark scenarios against Parley and the reference relay.

    .venv/bin/python -m bench.run --scenario fanout --receivers 1000 --repeat 3
    .venv/bin/python -m bench.run --scenario default        # what `make bench` runs

Each scenario starts its own server for each target and repeat (gunicorn
pinned with taskset to ``--server-cpus``; this process pins itself to
``--gen-cpus``), prints a table of the medians, and writes the raw runs and
the medians as JSON under bench/results/ (or ``--json PATH``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import loadgen, scenarios
from .servers import ROOT, Redis, WebServer, postgres_database

RESULTS = ROOT / "bench" / "results"
log = logging.getLogger("bench")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", required=True,
                   choices=["connections", "fanout", "chat", "scale", "join", "storm",
                            "default"])
    p.add_argument("--targets", default="parley,relay",
                   help="comma-separated: parley, relay (scale: parley only by default)")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported")
    p.add_argument("--json", type=Path, help="write the result here (default bench/results/)")
    p.add_argument("--server-cpus", default="0", help="taskset list for the server")
    p.add_argument("--gen-cpus", default="1", help="CPUs this load generator pins itself to")
    # connections
    p.add_argument("--connections", default="1000,5000,10000",
                   help="connection counts for the connections scenario")
    p.add_argument("--hold", type=float, default=5.0, help="seconds to hold the connections")
    # fan-out and scale
    p.add_argument("--receivers", type=int, default=1000)
    p.add_argument("--rates", default="10,20,30,36,40,44,48,52,60,70,80",
                   help="sender messages/s, stepped until a step fails")
    p.add_argument("--step", type=float, default=5.0, help="seconds per rate step")
    # chat
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--room-size", type=int, default=10)
    p.add_argument("--chat-rates", default="250,500,750,1000,1250,1500,2000",
                   help="total sends/s, stepped until a step fails")
    # join
    p.add_argument("--join-receivers", type=int, default=1000)
    p.add_argument("--members-limit", type=int, default=None,
                   help="join: Parley's acks list at most this many members (room:join members_limit)")
    p.add_argument("--new-members", action="store_true",
                   help="join: the receivers become members by joining (member:added each)")
    p.add_argument("--plain-presence", action="store_true",
                   help="join: Parley's clients do not opt into presence:batch")
    # storm
    p.add_argument("--storm-clients", type=int, default=1000,
                   help="storm: signed-in clients (the issue's figure: 5000)")
    p.add_argument("--storm-room-size", type=int, default=10)
    p.add_argument("--storm-rate", type=float, default=100.0,
                   help="storm: total sends/s while it runs")
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite",
                   help="Parley's database: a SQLite file in the work directory, or a fresh "
                        "PostgreSQL database on BENCH_POSTGRES_URL's server "
                        "(default postgresql://postgres@127.0.0.1:5432/postgres), "
                        "dropped at the end")
    p.add_argument("--profile", action="store_true",
                   help="record the server worker with py-spy (collapsed stacks in the work dir)")
    p.add_argument("--per-user", type=int, default=10,
                   help="connections per signed-in user in the connections scenario")
    return p.parse_args(argv)


def median_of(runs: list[dict]) -> dict:
    """Median of every top-level number (and of nested latency figures) over runs."""
    out: dict = {}
    for key, value in runs[0].items():
        values = [r.get(key) for r in runs]
        if isinstance(value, bool):
            out[key] = any(values)
        elif isinstance(value, (int, float)) and all(isinstance(v, (int, float)) for v in values):
            out[key] = statistics.median(values)
        elif isinstance(value, dict) and all(isinstance(v, dict) for v in values) and key not in ("ack_errors", "send_errors"):
            out[key] = median_of(values)
        elif key != "steps":
            out[key] = value
    return out


def system_note() -> dict:
    return {
        "loadavg": os.getloadavg(),
        "cpus": os.cpu_count(),
        "generator_affinity": sorted(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


class Bench:
    def __init__(self, args):
        self.args = args
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="work-", dir=RESULTS))
        self.users = scenarios.Users()
        self.times = None  # overrides --repeat for part of the default set
        self.database_url: str | None = None  # set by main_async for --database postgres

    def server(self, kind: str, **kw) -> WebServer:
        return WebServer(self.workdir, kind=kind, cpus=kw.pop("cpus", self.args.server_cpus),
                         database_url=self.database_url, **kw)

    async def repeat(self, kind: str, scenario, server_kw: dict | None = None, **kw) -> dict:
        runs = []
        for i in range(self.times or self.args.repeat):
            redis = None
            # A fresh copy per run: each run starts its own Redis.
            run_kw = dict(server_kw or {})
            if run_kw.pop("redis", False):
                redis = Redis(self.workdir, cpus=run_kw.get("cpus", self.args.server_cpus))
                run_kw["redis_url"] = redis.url
            server = self.server(kind, **run_kw)
            spy = self._profile(server, f"{kind}-{scenario.__name__}-{i + 1}")
            try:
                result = await scenario(server, self.users, **kw)
            finally:
                if spy is not None:
                    spy.send_signal(subprocess.signal.SIGINT)
                    spy.wait(60)
                server.stop()
                if redis:
                    redis.stop()
            log.info("%s %s run %d: %s", kind, scenario.__name__, i + 1,
                     {k: v for k, v in result.items() if k != "steps"})
            runs.append(result)
            await asyncio.sleep(1.0)
        return {"median": median_of(runs), "runs": runs}

    def _profile(self, server, name: str):
        if not self.args.profile:
            return None
        out = self.workdir / f"{name}.txt"
        log.info("py-spy: %s", out)
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw",
             "--rate", "200", "--nonblocking", "-o", str(out), "--pid", str(server.workers()[0])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # scenarios ---------------------------------------------------------------
    async def connections(self, counts=None):
        a = self.args
        out = {}
        for kind in self.targets():
            for count in counts or [int(c) for c in a.connections.split(",")]:
                out[f"{kind}/{count}"] = await self.repeat(
                    kind, scenarios.connections, count=count, hold=a.hold, per_user=a.per_user)
        return out

    async def fanout(self, receivers=None, rates=None):
        a = self.args
        out = {}
        for kind in self.targets():
            out[kind] = await self.repeat(kind, scenarios.fanout,
                                          receivers=receivers or a.receivers,
                                          rates=rates or _floats(a.rates), duration=a.step)
        return out

    async def chat(self, clients=None, rates=None):
        a = self.args
        out = {}
        for kind in self.targets():
            out[kind] = await self.repeat(kind, scenarios.chat, clients_count=clients or a.clients,
                                          room_size=a.room_size,
                                          rates=rates or _floats(a.chat_rates), duration=a.step)
        return out

    async def scale(self, receivers=None, rates=None):
        a = self.args
        out = {}
        kinds = self.targets() if a.targets != "parley,relay" else ["parley"]
        for kind in kinds:
            for workers, cpus in ((1, a.server_cpus), (2, "0,1")):
                out[f"{kind}/{workers}w"] = await self.repeat(
                    kind, scenarios.fanout,
                    {"workers": workers, "redis": True, "cpus": cpus},
                    receivers=receivers or a.receivers, rates=rates or _floats(a.rates),
                    duration=a.step)
            one = out[f"{kind}/1w"]["median"]["best_deliveries_per_s"]
            two = out[f"{kind}/2w"]["median"]["best_deliveries_per_s"]
            out[f"{kind}/ratio"] = round(two / one, 2) if one else None
        return out

    async def join(self, receivers=None):
        a = self.args
        return {kind: await self.repeat(kind, scenarios.join,
                                        receivers=receivers or a.join_receivers,
                                        batched=not a.plain_presence,
                                        new_members=a.new_members,
                                        members_limit=a.members_limit)
                for kind in self.targets()}

    async def storm(self, clients=None):
        a = self.args
        out = {}
        for kind in self.targets():
            out[kind] = await self.repeat(kind, scenarios.storm,
                                          clients_count=clients or a.storm_clients,
                                          room_size=a.storm_room_size, rate=a.storm_rate)
        return out

    async def default(self):
        """`make bench`: each scenario once at a size that fits in a few minutes."""
        return {
            "connections": await self.connections([2000]),
            "fanout": await self.fanout(1000, [10, 20, 30, 36, 40, 44, 48, 52, 60]),
            "chat": await self.chat(500, [250, 500, 1000, 1500, 2000]),
            **await self._once({"join": lambda: self.join(1000),
                                "storm": lambda: self.storm(1000)}),
        }

    async def _once(self, parts: dict) -> dict:
        """The default set's join and storm run once each (their set-up signs
        in 1,000 users; three repeats would triple the set's time)."""
        self.times = 1
        try:
            return {name: await part() for name, part in parts.items()}
        finally:
            self.times = None

    def targets(self) -> list[str]:
        return [t.strip() for t in self.args.targets.split(",") if t.strip()]


# tables ------------------------------------------------------------------------

def _ms(lat: dict | None) -> str:
    if not lat or lat.get("p50") is None:
        return "-"
    return f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f}"


def tables(scenario: str, result: dict) -> str:
    lines = []
    if scenario == "default":
        for name, part in result.items():
            lines += [f"### {name}", tables(name, part), ""]
        return "\n".join(lines)
    if scenario == "connections":
        lines += ["| server | connections | opened | failures | connects/s | RSS before → after (MiB) "
                  "| KiB/connection | generator CPU |",
                  "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
        for key, r in result.items():
            m = r["median"]
            lines.append(f"| {key.split('/')[0]} | {m['connections']} | {m['opened']:.0f} "
                         f"| {m['failures']:.0f} | {m['connects_per_s']:.0f} "
                         f"| {m['server_rss_before_kib'] / 1024:.0f} → "
                         f"{m['server_rss_after_kib'] / 1024:.0f} | {m['kib_per_connection']:.1f} "
                         f"| {m['generator_cpu']:.2f} |")
    elif scenario in ("fanout", "scale"):
        lines += ["| server | receivers | best deliveries/s (p99 < 250 ms) | sender msgs/s "
                  "| latency p50 / p95 / p99 ms | lost | server CPU | generator CPU |",
                  "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
        for key, r in result.items():
            if not isinstance(r, dict):
                lines.append(f"| {key} | | {r} × | | | | | |")
                continue
            m = r["median"]
            lines.append(f"| {key} | {m['receivers']} | {m['best_deliveries_per_s']:.0f} "
                         f"| {m['best_rate']} | {_ms(m.get('best_latency_ms'))} "
                         f"| {m['best_lost']} | {m['best_server_cpu']} "
                         f"| {m['best_generator_cpu']} |")
    elif scenario == "chat":
        lines += ["| server | clients (rooms) | best acked sends/s | deliveries/s "
                  "| delivery p50 / p95 / p99 ms | ack p50 / p95 / p99 ms | lost | generator CPU |",
                  "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |"]
        for key, r in result.items():
            m = r["median"]
            lines.append(f"| {key} | {m['clients']} ({m['rooms']}) | {m['best_acks_per_s']:.0f} "
                         f"| {m['best_deliveries_per_s']:.0f} | {_ms(m.get('best_latency_ms'))} "
                         f"| {_ms(m.get('best_ack_latency_ms'))} | {m['best_lost']} "
                         f"| {m['best_generator_cpu']} |")
    elif scenario == "join":
        lines += ["| server | receivers | connects/s | fill s (joins + presence) | joins acked s "
                  "| presence events | presence MiB | server CPU | failures |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for key, r in result.items():
            m = r["median"]
            lines.append(f"| {key} | {m['receivers']} | {m['connects_per_s']:.0f} "
                         f"| {m['fill_s']:.2f} | {m['joins_acked_s']:.2f} "
                         f"| {m['presence_events']:.0f} | {m['presence_mib']} "
                         f"| {m['server_cpu']} "
                         f"| {m['connect_failures'] + m['join_failures']:.0f} |")
    elif scenario == "storm":
        lines += ["| server | clients (rooms) | caught up s | peak RSS MiB | lost | doubled "
                  "| redelivered (skipped by cursor) | attempts mean / max | acked sends |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
        for key, r in result.items():
            m = r["median"]
            lost = m["lost"] if m.get("persisted") else f"{m['lost']:.0f} (stores nothing)"
            lines.append(f"| {key} | {m['clients']} ({m['rooms']}) | {m['caught_up_s']:.2f} "
                         f"| {m['rss_peak_kib'] / 1024:.0f} | {lost} | {m['doubled']:.0f} "
                         f"| {m['redelivered']:.0f} | {m['attempts_mean']} / "
                         f"{m['attempts_max']:.0f} | {m['acked']:.0f} |")
    return "\n".join(lines)


async def main_async(args) -> dict:
    bench = Bench(args)
    log.info("work directory (database, server logs): %s", bench.workdir)
    if args.database == "postgres":
        with postgres_database() as url:
            bench.database_url = url
            log.info("database: %s", url)
            return await getattr(bench, args.scenario)()
    return await getattr(bench, args.scenario)()


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("picows").setLevel(logging.WARNING)
    if args.gen_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.gen_cpus.split(",")})
    fds = loadgen.raise_fd_limit()
    log.info("file descriptors: %d", fds)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    note = system_note()
    result = asyncio.run(main_async(args))
    note["loadavg_after"] = os.getloadavg()
    doc = {"scenario": args.scenario, "args": vars(args) | {"json": str(args.json)},
           "system": note, "bench_env": __import__("bench.servers").servers.BENCH_ENV,
           "result": result}
    path = args.json or RESULTS / f"{args.scenario}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str))
    print()
    print(f"## {args.scenario} (median of {args.repeat}; load average before "
          f"{note['loadavg'][0]:.2f}, after {note['loadavg_after'][0]:.2f})")
    print(tables(args.scenario, result))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
