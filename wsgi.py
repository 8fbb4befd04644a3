"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``.

gevent must patch the standard library before anything else imports it
(sockets, threading, ssl, and psycopg's waits), so this comes first.
"""
from gevent import monkey

monkey.patch_all()

from app import create_app  # noqa: E402

app = create_app()
