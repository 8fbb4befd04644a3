"""Running CPU-heavy C calls without stalling the gevent worker."""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


def offload(fn: Callable[..., T], *args) -> T:
    """Run ``fn`` in gevent's thread pool when the process is monkey-patched.

    Password hashing takes tens of milliseconds of CPU in C code that releases
    the GIL; run inline it would freeze every connection of the worker for that
    long. Outside gevent (tests, the CLI) it simply runs inline.
    """
    try:
        from gevent import get_hub, monkey
    except ImportError:  # pragma: no cover - gevent is a hard dependency
        return fn(*args)
    if not monkey.is_module_patched("threading"):
        return fn(*args)
    return get_hub().threadpool.apply(fn, args)
