"""Run Parley's scale-out stack on this machine: Redis, two gunicorn
instances and nginx with sticky sessions, all on loopback.

    make cluster          # or: .venv/bin/python deploy/cluster.py

Then open http://127.0.0.1:8080. Ctrl-C stops everything. The database is
``DATABASE_URL`` if set (use PostgreSQL for anything real), else the same
SQLite file as `make run`. The nginx configuration is rendered from
deploy/nginx/local.conf.template and includes the production proxy snippet,
so this exercises the same proxy settings a deployment uses.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX_DIR = ROOT / "deploy" / "nginx"


def render_nginx_conf(prefix: Path, port: int, backends: list[str],
                      balance: str = "ip_hash") -> Path:
    """Write an nginx.conf under ``prefix`` proxying ``port`` to ``backends``.

    ``balance`` is the upstream's balancing directive: ``ip_hash`` (sticky,
    as deployed) or ``""`` (round robin, which breaks long-polling).
    """
    prefix.mkdir(parents=True, exist_ok=True)
    text = (NGINX_DIR / "local.conf.template").read_text()
    servers = "\n".join(f"        server {b};" for b in backends)
    text = (text.replace("{{PREFIX}}", str(prefix)).replace("{{PORT}}", str(port))
                .replace("{{SERVERS}}", servers)
                .replace("{{BALANCE}}", f"{balance};" if balance else "")
                .replace("{{PROXY_SNIPPET}}", str(NGINX_DIR / "parley-proxy.conf")))
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_command(conf: Path, binary: str | None = None) -> list[str]:
    binary = binary or shutil.which("nginx") or "/usr/sbin/nginx"
    return [binary, "-p", str(conf.parent), "-c", str(conf), "-e", str(conf.parent / "error.log")]


def main() -> int:
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    redis_port, ports, nginx_port = 6390, [8001, 8002], int(env.get("CLUSTER_PORT", "8080"))
    env.setdefault("REDIS_URL", f"redis://127.0.0.1:{redis_port}/0")
    work = Path(tempfile.mkdtemp(prefix="parley-cluster-"))
    processes: list[subprocess.Popen] = []

    def spawn(cmd, **kwargs):
        processes.append(subprocess.Popen(cmd, cwd=ROOT, env=env, **kwargs))

    try:
        if "REDIS_URL" not in os.environ:
            spawn([shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                   "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                  stdout=subprocess.DEVNULL)
        subprocess.run([str(venv_bin / "flask"), "--app", "wsgi", "ensure-admin"], cwd=ROOT,
                       env=env, check=True)
        for port in ports:
            spawn([str(venv_bin / "gunicorn"), "-c", "gunicorn.conf.py",
                   "--bind", f"127.0.0.1:{port}", "wsgi:app"])
        conf = render_nginx_conf(work / "nginx", nginx_port, [f"127.0.0.1:{p}" for p in ports])
        spawn(nginx_command(conf))
        time.sleep(1.5)
        print(f"\nParley cluster: http://127.0.0.1:{nginx_port} (nginx, ip_hash) -> "
              f"gunicorn on {', '.join(map(str, ports))}; Redis {env['REDIS_URL']}.\n"
              "Ctrl-C stops it.", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a process of the cluster exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
