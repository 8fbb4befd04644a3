"""Running CPU-heavy C calls without stalling the gevent worker."""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


def offload(fn: Callable[..., T], *args) -> T:
    """Run ``fn`` in gevent's thread pool when the process is monkey-patched.

    Password hashing takes tens of milliseconds of CPU in C code that releases
    the GIL; run inline it would freeze every connection of the worker for that
    long. Outside gevent (tests, the CLI) it simply runs inline.

    An exception of ``fn`` is raised here, in the caller's greenlet, as if
    ``fn`` had run inline. It must not escape in the pool's thread: gevent's
    hub prints every exception raised there, with its traceback, to stderr,
    so each wrong password (argon2's ``VerifyMismatchError``) would write a
    traceback to the server's log that any anonymous client could fill.
    """
    try:
        from gevent import get_hub, monkey
    except ImportError:  # pragma: no cover - gevent is a hard dependency
        return fn(*args)
    if not monkey.is_module_patched("threading"):
        return fn(*args)
    value, error = get_hub().threadpool.apply(_outcome, (fn, args))
    if error is not None:
        raise error
    return value


def _outcome(fn: Callable[..., T], args: tuple) -> tuple[T | None, BaseException | None]:
    """``fn(*args)`` as a value: its result, or the exception it raised."""
    try:
        return fn(*args), None
    except Exception as exc:  # handed to the caller, which raises it
        return None, exc
