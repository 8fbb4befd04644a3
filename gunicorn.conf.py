"""gunicorn settings for Parley. Every value can be set from the environment.

Run: ``gunicorn -c gunicorn.conf.py wsgi:app`` (a ``--bind`` on the command
line overrides ``bind`` here).
"""
import gc
import os
import resource
import sys

# gevent-websocket's worker: a gevent worker whose WSGI server speaks
# WebSocket natively. Measured on this stack it delivers ~40k msgs/s at ~55 KB
# per connection, against ~28k at ~67 KB for `-k gevent` + simple-websocket.
# Do not switch to plain `-k gevent` while gevent-websocket is installed:
# python-engineio then picks gevent-websocket's handler, which that worker
# lacks, and every WebSocket upgrade fails.
worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"

# One worker by default: Socket.IO long-polling sends each request of a
# session to the process that holds it, which several workers behind one
# port cannot guarantee. Use more processes with REDIS_URL and either sticky
# sessions in a proxy or the WebSocket-only mode (see docs/deploy.md).
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))

# gunicorn's default (1000) would cap each worker at 1000 sockets.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "20000"))

bind = os.environ.get("BIND", "127.0.0.1:" + os.environ.get("PORT", "8000"))
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
accesslog = os.environ.get("ACCESS_LOG") or None  # "-" for stdout
errorlog = "-"

# Long-polling requests wait up to ping_interval (25 s) for data; a gevent
# worker heartbeats from its own greenlet, so `timeout` only catches a worker
# whose loop is truly blocked.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "30"))
keepalive = 75

# The app's state (sockets, presence) belongs to each worker: never preload.
preload_app = False

# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default,
# which collides when several instances run on one host. Off unless a path
# is given.
_control = os.environ.get("GUNICORN_CONTROL_SOCKET")
if _control:
    control_socket = _control
else:
    control_socket_disable = True


def _raise_fd_limit():
    """Each connection is a file descriptor: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass


def _truthy(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def on_starting(server):
    workers_wanted = server.cfg.workers
    if workers_wanted > 1:
        # Several workers share one port, so the kernel spreads requests over
        # them: a long-polling session's requests would land on workers that
        # do not know it, and each worker's emits would reach only its own
        # clients without a shared message queue.
        problems = []
        if not os.environ.get("REDIS_URL"):
            problems.append("REDIS_URL is not set (workers must share a message queue)")
        if not _truthy("WEBSOCKET_ONLY"):
            problems.append("WEBSOCKET_ONLY is not true (long-polling needs sticky sessions)")
        if problems:
            raise SystemExit(
                f"Parley refuses to start {workers_wanted} workers on one port: "
                + "; ".join(problems)
                + ". Run one worker per port behind a sticky proxy instead (docs/deploy.md).")
    _raise_fd_limit()
    _fresh_metrics_dir()


def _fresh_metrics_dir():
    """prometheus-client's multiprocess files must start empty: stale ones from
    an earlier run would add dead workers' counts to the new ones."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def child_exit(server, worker):
    # A dead worker's live gauges (connections) must leave the sum.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    extensions = getattr(worker.wsgi, "extensions", {})
    # The schema first (app/database.py): an empty database gets it, one
    # older than the code stops the server with the command to run. Exiting
    # with gunicorn's boot-error code makes the arbiter halt instead of
    # forking the same failure again; in the worker, not the arbiter, since
    # the arbiter never loads the app (see preload_app).
    prepare = extensions.get("parley_prepare_schema")
    if prepare is not None:
        from app.database import SchemaNotReady

        try:
            prepare()
        except SchemaNotReady as refusal:
            worker.log.error("%s", refusal)
            sys.exit(3)  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR
    # gevent-websocket's handler with a deadline on every read and write and
    # the body limit checked from the header (app/sockets/transport.py):
    # gevent's WSGI server has none, so one silent client would hold its
    # connection forever. keepalive (above) bounds an idle kept-alive one.
    from app.sockets.transport import handler_class

    worker.wsgi_handler = handler_class(worker.wsgi, worker.cfg.keepalive)
    # Start the app's per-process background work (heartbeat, control bus)
    # in the worker, never in the arbiter.
    start = extensions.get("parley_start")
    if start is not None:
        start()
    stopping = extensions.get("parley_stopping")
    if stopping is not None:
        _on_sigterm(worker, stopping)
    if not _truthy("GC_NO_FREEZE"):
        # Everything loaded so far (Flask, SQLAlchemy, the app) lives as long
        # as the worker: move it out of the garbage collector's generations,
        # so that collections triggered by the broadcast path's allocations
        # stop walking it (shorter pauses, less CPU; docs/performance.md).
        gc.collect()
        gc.freeze()
    threshold = os.environ.get("GC_THRESHOLD", "").strip()
    if threshold:
        # Python's collection thresholds (gc.set_threshold), e.g. "50000,20,10":
        # fewer collections of a heap holding thousands of connections
        # (docs/performance.md, reconnect storm). Unset: Python's defaults.
        gc.set_threshold(*(int(part) for part in threshold.split(",")))


def _on_sigterm(worker, app_stopping):
    """On the worker's SIGTERM, move its clients at once, then let it exit.

    gunicorn's own handler (``handle_exit``) only clears ``worker.alive``: the
    run loop then closes the listeners and waits up to ``graceful_timeout``
    for open connections to end, and a WebSocket (or an idle kept-alive
    connection) never ends on its own. ``app_stopping``
    (app/sockets/shutdown.py) answers 503 from now on, cuts the clients'
    transports so they reconnect elsewhere, and returns once the requests in
    flight are done; then the idle connections are dropped, the pool is
    empty and the run loop returns. A greenlet, because a signal handler must
    not block. SIGINT/SIGQUIT (a quick stop) exit at once and need nothing.
    """
    import signal

    import gevent

    servers = []
    serving = worker.server_class

    class RecordedServer(serving):
        # The worker's run loop keeps its servers to itself: remember them
        # to drop their idle connections.
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            servers.append(self)

    worker.server_class = RecordedServer

    def stop():
        app_stopping(worker.sockets, drain_timeout=worker.cfg.graceful_timeout)
        for server in servers:
            server.stop(timeout=0)

    def handle_exit(sig, frame):
        worker.handle_exit(sig, frame)
        gevent.spawn(stop)

    signal.signal(signal.SIGTERM, handle_exit)
    # As gunicorn sets it: SIGTERM must not interrupt system calls.
    signal.siginterrupt(signal.SIGTERM, False)


def post_fork(server, worker):
    _raise_fd_limit()
