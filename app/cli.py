"""Command-line tools: ``flask --app wsgi create-user``, ``create-bot``, ``reset-password``, ``ensure-admin``, ``create-webhook``, ``check-rooms``..."""
from __future__ import annotations

import secrets
import sys
from pathlib import Path

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


def _flask_command() -> str:
    """How to run this same ``flask`` again, as the operator would type it.

    ``make run`` uses the virtualenv's ``flask``, which is not on PATH: a
    bare ``flask`` in a hint fails with "command not found". The path is
    relative to the current directory when it lies under it.
    """
    flask = Path(sys.executable).with_name("flask")
    try:
        return str(flask.relative_to(Path.cwd()))
    except ValueError:
        return str(flask)


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

    @app.cli.command("reset-password")
    @click.argument("username")
    @click.option("--password-stdin", is_flag=True, required=True,
                  help="Read the new password from standard input.")
    def reset_password(username: str, password_stdin: bool) -> None:
        """Give a user a new password (read from standard input); their sessions end."""
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            users.reset_password("cli", username, password)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"password reset for {users.get_user(username).username}; "
                   "their sessions have ended")

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
            flask = _flask_command()
            click.echo("An admin account exists: sign in with it, or create one with\n"
                       f"  printf '%s\\n' \"$PASSWORD\" | {flask} --app wsgi create-user NAME"
                       " --password-stdin --admin\n"
                       "or give a user a new password with\n"
                       f"  printf '%s\\n' \"$PASSWORD\" | {flask} --app wsgi reset-password NAME"
                       " --password-stdin")
            return
        password = secrets.token_urlsafe(12)
        users.create_user(username, password, is_admin=True)
        click.echo(f"Created the first admin.\n  username: {username}\n  password: {password}\n"
                   "Keep it safe: it is shown only this once.")

    @app.cli.command("create-invite")
    @click.option("--count", default=1, show_default=True, type=click.IntRange(1, 1000),
                  help="How many codes to make.")
    @click.option("--hours", type=float, default=None,
                  help="Hours each code stays usable (default: INVITE_TTL_HOURS).")
    def create_invite(count: int, hours: float | None) -> None:
        """Make single-use invite codes for REGISTRATION_OPEN=invite; one per line."""
        from .services import invites

        ensure_schema()
        for _ in range(count):
            try:
                invite = invites.create_invite("cli", hours)
            except DomainError as exc:
                raise click.ClickException(exc.message) from None
            click.echo(f"{invite['code']}\texpires {invite['expires_at']}")

    @app.cli.command("announce")
    @click.argument("body")
    @click.option("--room", default=None, help="Only this room's members (its slug).")
    @click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
                  help="How long it stays current (default: until dismissed).")
    def announce(body: str, room: str | None, minutes: float | None) -> None:
        """Send an announcement to every chat client (or one room's), through Redis."""
        from .services import Actor, moderation

        if not current_app.config.get("REDIS_URL"):
            raise click.ClickException(
                "announce reaches the servers through Redis: set REDIS_URL (without it, "
                "announce from the admin console)")
        try:
            sent = moderation.announce(Actor(id=0, username="cli"), body, room, minutes)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"announced to {sent['room'] or 'every room'}")

    @app.cli.command("create-webhook")
    @click.argument("url")
    @click.option("--room", "rooms", multiple=True,
                  help="Only this room's changes (its slug; repeat for several). "
                       "Default: every public room.")
    @click.option("--event", "events", multiple=True,
                  help="Only this event (repeat for several). Default: every event.")
    @click.option("--inactive", is_flag=True, help="Register it disabled.")
    def create_webhook(url: str, rooms: tuple[str, ...], events: tuple[str, ...],
                       inactive: bool) -> None:
        """Register an outgoing webhook and print its secret (shown only this once)."""
        from .services import Actor, webhooks

        ensure_schema()
        try:
            webhook, secret = webhooks.create_webhook(Actor(id=0, username="cli"), url,
                                                      list(rooms) or None, list(events),
                                                      not inactive)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"created webhook {webhook['id']} for {webhook['url']}\nsecret: {secret}\n"
                   "Keep it safe: it is shown only this once (the receiver verifies "
                   "X-Parley-Signature with it).")

    @app.cli.command("list-webhooks")
    def list_webhooks() -> None:
        """List the webhooks: id, state, URL, rooms, events, pending deliveries."""
        from .services import webhooks

        for hook in webhooks.list_webhooks():
            state = "active" if hook["active"] else "disabled"
            if hook["disabled_reason"]:
                state += f" ({hook['disabled_reason']})"
            click.echo("\t".join([str(hook["id"]), state, hook["url"],
                                  ",".join(hook["rooms"]) if hook["rooms"] else "all rooms",
                                  ",".join(hook["events"]) or "all events",
                                  f"{hook['pending']} pending"]))

    @app.cli.command("delete-webhook")
    @click.argument("webhook_id", type=int)
    def delete_webhook(webhook_id: int) -> None:
        """Remove a webhook and its deliveries."""
        from .services import Actor, webhooks

        try:
            webhooks.delete_webhook(Actor(id=0, username="cli"), webhook_id)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"deleted webhook {webhook_id}")

    @app.cli.command("check-rooms")
    def check_rooms() -> None:
        """List rooms that pose as direct messages; exit 1 if there are any."""
        from .services.rooms import rooms_posing_as_dms

        found = rooms_posing_as_dms()
        if not found:
            click.echo("no room poses as a direct message")
            return
        for slug, why in found:
            click.echo(f"{slug}: {why}")
        raise click.ClickException(
            f"{len(found)} room(s) look like direct messages but are not genuine: dm:open no "
            "longer uses them; review each in the admin console (archive it, tell its "
            "members) as docs/hardening.md describes")

    @app.cli.command("prune-changes")
    def prune_changes() -> None:
        """Drop change-log entries past the retention window now (servers also do it hourly)."""
        from .services import changes

        click.echo(f"removed {changes.prune()} change-log entries")

    @app.cli.command("init-db")
    def init_db() -> None:
        """Create or upgrade the database schema."""
        ensure_schema()
        click.echo("database ready: " + ", ".join(sorted(inspect(db.engine).get_table_names())))
