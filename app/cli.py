"""Command-line tools: ``flask --app wsgi create-user``, ``create-bot`` and ``ensure-admin``."""
from __future__ import annotations

import secrets
import sys

import click
from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import inspect, select

from .errors import DomainError
from .extensions import db
from .models import User
from .services import users


def ensure_schema() -> None:
    """Bring the database schema to the newest migration (creating it if empty)."""
    upgrade(directory=current_app.extensions["migrate"].directory)


def register(app) -> None:
    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, required=True,
                  help="Read the password from standard input.")
    @click.option("--admin", is_flag=True, help="Make the user an admin.")
    def create_user(username: str, password_stdin: bool, admin: bool) -> None:
        """Create a user; the password is read from standard input."""
        password = sys.stdin.readline().rstrip("\r\n")
        ensure_schema()
        try:
            user = users.create_user(username, password, is_admin=admin)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"created {'admin' if admin else 'user'} {user.username}")

    @app.cli.command("create-bot")
    @click.argument("name")
    @click.option("--admin", is_flag=True, help="Let the bot use the admin namespace.")
    def create_bot(name: str, admin: bool) -> None:
        """Create a bot account and print its key (shown only this once)."""
        from .services import Actor, bots

        ensure_schema()
        try:
            bot, key = bots.create_bot(Actor(id=0, username="cli"), name, is_admin=admin)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"created bot {bot['username']}\nkey: {key}\n"
                   "Keep it safe: it is shown only this once (rotate it in the admin console).")

    @app.cli.command("ensure-admin")
    @click.option("--username", default="admin", show_default=True)
    def ensure_admin(username: str) -> None:
        """Prepare the database; create a first admin if there is none, and say how to sign in."""
        ensure_schema()
        if db.session.execute(select(User.id).where(User.is_admin.is_(True))).first():
            click.echo("An admin account exists: sign in with it, or create one with\n"
                       "  flask --app wsgi create-user NAME --password-stdin --admin")
            return
        password = secrets.token_urlsafe(12)
        users.create_user(username, password, is_admin=True)
        click.echo(f"Created the first admin.\n  username: {username}\n  password: {password}\n"
                   "Keep it safe: it is shown only this once.")

    @app.cli.command("announce")
    @click.argument("body")
    @click.option("--room", default=None, help="Only this room's members (its slug).")
    def announce(body: str, room: str | None) -> None:
        """Send an announcement to every chat client (or one room's), through Redis."""
        from .services import Actor, moderation

        if not current_app.config.get("REDIS_URL"):
            raise click.ClickException(
                "announce reaches the servers through Redis: set REDIS_URL (without it, "
                "announce from the admin console)")
        try:
            sent = moderation.announce(Actor(id=0, username="cli"), body, room)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"announced to {sent['room'] or 'every room'}")

    @app.cli.command("init-db")
    def init_db() -> None:
        """Create or upgrade the database schema."""
        ensure_schema()
        click.echo("database ready: " + ", ".join(sorted(inspect(db.engine).get_table_names())))
