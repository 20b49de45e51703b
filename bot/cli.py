"""The `pcp` console command: serve, ask, console, check-data."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from slack_sdk import WebClient

from bot.config import Settings
from bot.console import run as run_console
from bot.console import to_terminal
from bot.db import Store, make_engine
from bot.migrate import current, head
from bot.outbox import delivery_client
from bot.progress import Progress
from bot.render import Message, phrase, render, render_plain
from bot.scheduler import upcoming
from handlers.answer import answer
from handlers.jobs import decide_alerts, decide_digest, deliver, digest_channels, preview_alerts
from scorecard.checks import find_discrepancies
from scorecard.digest import build_digest, last_digest_at
from scorecard.imports import ImportRefused, RowError, apply_import, prepare_import
from scorecard.leads import LeadError, add_lead, check_user, leads, remove_lead, subject_for
from scorecard.models import HOME_FORCE
from scorecard.periods import today_in
from scorecard.police_import import load_mapping, plan_police_import
from scorecard.police_uk import PoliceDataError, count_street_crimes, street_files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pcp", description="The West Yorkshire Police and Crime Plan in Slack.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the Slack bot (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)")
    ask = commands.add_parser("ask", help="print what `/pcp TEXT` would answer")
    ask.add_argument("text", nargs="*", help="what you would type after /pcp")
    ask.add_argument("--json", action="store_true", help="print the Slack message payload (text and blocks)")
    commands.add_parser("console", help="a local console that answers like /pcp, no Slack needed")
    commands.add_parser("check-data", help="list where the plan document disagrees with its own figures")
    load = commands.add_parser("import", help="import readings from a CSV or XLSX file (all or nothing)")
    load.add_argument("file", type=Path, help="the CSV or XLSX file; see README for its columns")
    load.add_argument("--dry-run", action="store_true", help="check the file and show what would change; write nothing")
    police = commands.add_parser("import-police", help="import police.uk street-level files (a folder or zip archive)")
    police.add_argument("path", type=Path, help="the folder or .zip downloaded from data.police.uk")
    police.add_argument("--dry-run", action="store_true", help="read and check everything; write nothing")
    digest = commands.add_parser("digest", help="print the weekly digest: what changed since the last one")
    digest.add_argument("--since", type=date.fromisoformat, help="YYYY-MM-DD (default: the last digest, or 7 days ago)")
    digest.add_argument("--post", action="store_true", help="post it to PCP_DIGEST_CHANNELS (once a week per channel)")
    alerts = commands.add_parser("alerts", help="list the alerts evaluation finds now; --post to send them")
    alerts.add_argument("--post", action="store_true", help="record them and send each lead a direct message")
    alerts.add_argument("--as-of", type=date.fromisoformat, help="judge the figures up to this date (default: today)")
    db = commands.add_parser("db", help="the database schema: `upgrade` to the latest migration, or `current`")
    db.add_argument("action", choices=["upgrade", "current"])
    commands.add_parser("jobs", help="the scheduled jobs and when each runs next")
    owner = commands.add_parser("owner", help="who leads a metric or priority (and receives its alerts)")
    owner.add_argument("action", choices=["add", "remove", "list"])
    owner.add_argument("subject", nargs="?", help="a metric or priority, as /pcp understands it")
    owner.add_argument("user", nargs="?", help="a Slack user id, e.g. U0123ABCD")
    return parser


def _asker(store: Store):
    def ask(text: str) -> Message:
        with store.session() as session:
            return answer(text, session=session)

    return ask


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    if args.command == "serve":
        from bot.runtime import serve  # configures logging itself

        if not settings.has_slack_credentials:
            print(phrase("serve_needs_credentials"), file=sys.stderr)
            return 2
        from slack_bolt.error import BoltError
        from slack_sdk.errors import SlackApiError

        try:
            serve(settings)
        except BoltError as error:  # Slack refused the bot token at start (auth.test)
            print(phrase("serve_bot_token_rejected", error=error), file=sys.stderr)
            return 3
        except SlackApiError as error:  # Slack refused the app token (apps.connections.open)
            reason = error.response.get("error", "unknown error")
            print(phrase("serve_app_token_rejected", reason=reason), file=sys.stderr)
            return 3
        return 0
    if args.command == "db":
        return manage_schema(settings, args.action)
    store = Store.open(settings.database_url)
    try:
        if args.command == "ask":
            message = _asker(store)(" ".join(args.text))
            if args.json:
                print(json.dumps(message.payload(), indent=2, ensure_ascii=False))
            else:
                print(to_terminal(message, bold=sys.stdout.isatty()), end="")
        elif args.command == "console":
            run_console(_asker(store))
        elif args.command == "check-data":
            with store.session() as session:
                print(render_plain("check_data.txt", items=find_discrepancies(session=session)), end="")
        elif args.command == "import":
            return import_readings(store, settings, args.file, dry_run=args.dry_run)
        elif args.command == "import-police":
            return import_police(store, settings, args.path, dry_run=args.dry_run)
        elif args.command == "digest" and args.post:
            return post_digest(store, settings)
        elif args.command == "digest":
            print(to_terminal(weekly_digest(store, since=args.since), bold=sys.stdout.isatty()), end="")
        elif args.command == "alerts":
            return run_alerts(store, settings, as_of=args.as_of or today_in(settings.pcp_timezone), post=args.post)
        elif args.command == "jobs":
            print(render_plain("jobs.txt", jobs=upcoming(settings, store), timezone=settings.pcp_timezone).rstrip())
        elif args.command == "owner":
            return manage_leads(store, args.action, args.subject, args.user)
        return 0
    finally:
        store.close()


def manage_schema(settings: Settings, action: str) -> int:
    """`pcp db upgrade` migrates (and seeds a new store) as every start does; `current` only looks."""
    store = Store(make_engine(settings.database_url))
    try:
        if action == "current":
            revision = current(store.engine)
            print(phrase("db_current", revision=revision, head=head()))
            return 0 if revision == head() else 1
        upgraded = store.prepare()
        print(phrase("db_upgraded", before=upgraded.before, after=upgraded.after, stamped=upgraded.stamped))
        return 0
    finally:
        store.close()


def import_readings(store: Store, settings: Settings, path: Path, *, dry_run: bool) -> int:
    """Exit 0 when the file was imported (or would be, with --dry-run), 1 when it was refused."""
    if not path.is_file():
        print(phrase("not_a_file", path=path), file=sys.stderr)
        return 1
    context = {"file_name": path.name, "dry_run": dry_run, "home_force": HOME_FORCE, "errors": [], "batch": None}
    try:
        with store.session() as session:
            plan = prepare_import(path.name, path.read_bytes(), session=session)
            if not dry_run:
                progress = Progress("Applying", unit="readings")
                context["batch"] = apply_import(
                    plan, session=session, actor=f"cli:{getpass.getuser()}", progress=progress
                )
    except ImportRefused as refused:
        print(render_plain("import_report.txt", **{**context, "errors": refused.errors}), file=sys.stderr)
        return 1
    print(render_plain("import_report.txt", **context, plan=plan))
    _alerts_after_import(store, settings, context["batch"])
    return 0


def _alerts_after_import(store: Store, settings: Settings, batch: object | None) -> None:
    """New figures may make a metric worse: decide now; pcp serve's delivery job sends the messages."""
    if batch is None:
        return
    decided = decide_alerts(store=store, as_of=today_in(settings.pcp_timezone), now=datetime.now(UTC))
    if decided.messages:
        print(phrase("alerts_queued", opened=decided.opened, messages=decided.messages))


def weekly_digest(store: Store, *, since: date | None = None, now: datetime | None = None) -> Message:
    """The digest as it would be posted now."""
    until = now or datetime.now(UTC)
    with store.session() as session:
        start = datetime.combine(since, time(), tzinfo=UTC) if since else last_digest_at(session=session)
        start = start or until - timedelta(days=7)
        return render("digest", digest=build_digest(session=session, since=start, until=until))


def _slack_for_posting(settings: Settings) -> WebClient | None:
    if settings.slack_bot_token is None:
        print(phrase("posting_needs_token"), file=sys.stderr)
        return None
    return delivery_client(settings)


def run_alerts(store: Store, settings: Settings, *, as_of: date, post: bool) -> int:
    """Without --post: what evaluation finds and who would hear. With it: record, queue, deliver."""
    if not post:
        print(render_plain("alerts.txt", findings=preview_alerts(store=store, as_of=as_of)).rstrip())
        return 0
    client = _slack_for_posting(settings)
    if client is None:
        return 2
    decided = decide_alerts(store=store, as_of=as_of, now=datetime.now(UTC))
    report = deliver(store=store, client=client, admins=settings.pcp_admins)
    print(phrase("alerts_posted", opened=decided.opened, recovered=decided.recovered, sent=report.sent))
    return 0


def post_digest(store: Store, settings: Settings) -> int:
    client = _slack_for_posting(settings)
    if client is None:
        return 2
    channels = digest_channels(store=store, configured=settings.pcp_digest_channels)
    if not channels:
        print(phrase("no_digest_channels"), file=sys.stderr)
        return 2
    queued = decide_digest(store=store, channels=channels, now=datetime.now(UTC))
    report = deliver(store=store, client=client, admins=settings.pcp_admins)
    print(phrase("digest_posted", queued=queued, channels=len(channels), sent=report.sent))
    return 0


def manage_leads(store: Store, action: str, subject_text: str | None, user: str | None) -> int:
    """`pcp owner add|remove|list`: changes are audited as made by the local login."""
    actor = f"cli:{getpass.getuser()}"
    with store.session() as session:
        try:
            subject = subject_for(subject_text, session=session) if subject_text else None
            if action == "list":
                print(
                    render_plain("leads.txt", leads=leads(session=session, subject=subject), subject=subject).rstrip()
                )
                return 0
            if subject is None or user is None:
                raise LeadError(f"pcp owner {action} needs a metric or priority and a Slack user id")
            change = add_lead if action == "add" else remove_lead
            changed = change(subject, check_user(user), session=session, actor=actor)
        except LeadError as error:
            print(phrase("owner_problem", problem=error), file=sys.stderr)
            return 1
    print(phrase("owner_changed", user=user, action=action, changed=changed, subject=subject.label))
    return 0


def import_police(store: Store, settings: Settings, path: Path, *, dry_run: bool) -> int:
    """Stream the street-level files, count per month, force and crime type, import the mapped metrics."""
    context = {"file_name": path.name, "dry_run": dry_run, "home_force": HOME_FORCE, "errors": [], "batch": None}
    try:
        counts = count_street_crimes(street_files(path), progress=Progress("Reading", unit="bytes"))
    except PoliceDataError as error:
        refused = [RowError(0, "", str(error))]
        print(render_plain("import_report.txt", **{**context, "errors": refused}), file=sys.stderr)
        return 1
    mapping = load_mapping()
    with store.session() as session:
        plan = plan_police_import(path.name, counts, session=session, mapping=mapping)
        if not dry_run:
            progress = Progress("Applying", unit="readings")
            context["batch"] = apply_import(plan, session=session, actor=f"cli:{getpass.getuser()}", progress=progress)
    print(render_plain("police_report.txt", counts=counts, mapping=mapping, home_force=HOME_FORCE))
    print(render_plain("import_report.txt", **context, plan=plan))
    _alerts_after_import(store, settings, context["batch"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
