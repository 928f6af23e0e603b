"""Try the system by hand, as one of the demo's actors, after `make run`.

    python -m scripts.cli commands                          # every command and its fields
    python -m scripts.cli actors                            # who you can be
    python -m scripts.cli --queue dossier.commands Ping     # is the dossier ready?
    python -m scripts.cli --as martin ReadDossier ins=@sophie
    python -m scripts.cli --as sophie ListPermissions ins=@sophie
    python -m scripts.cli --as sophie AuthorizeProfessional ins=@sophie rpps=@bernard

Fields are `name=value` (a value in JSON when it parses as JSON, else a string; `@actor` is that
actor's INS or RPPS); or one JSON object. The reply is printed as the contract types it; a
refusal prints its code, message and rule, and exits 1. The actors are those `make run` made
(`.run/actors.json`); sign-in happens here, as an app would: a card signs a challenge, a holder
gets a one-time code by e-mail (read from `.run/mail/`, where the demo's SMTP server keeps
mails). Tokens are kept in `.run/tokens.json` (0600) until they expire.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.contracts import commands as cmd
from libs.contracts.rpc import EVERY_QUEUE, Command
from libs.provision import Environment
from scripts.asyncapi import commands

RUN = Path(os.environ.get("RUN_DIR", ".run"))
ACTORS = RUN / "actors.json"
TOKENS = RUN / "tokens.json"
MAIL = RUN / "mail"


def contracts() -> dict[str, type[Command[Any]]]:
    return {c.NAME: c for c in commands()}


def describe() -> str:
    lines = []
    for contract in commands():
        queue = "every queue" if contract.QUEUE == EVERY_QUEUE else contract.QUEUE
        fields = ", ".join(
            name + ("" if field.is_required() else "?")
            for name, field in contract.model_fields.items()
        )
        token = "" if contract.AUTHENTICATED else " (no token)"
        lines.append(
            f"{contract.NAME:<22} {queue:<19} -> {contract.REPLY.__name__:<19} {fields}{token}"
        )
    return "\n".join(lines)


def load_actors() -> dict[str, dict[str, str]]:
    if not ACTORS.exists():
        raise SystemExit("no actors yet: run `make run` first (it plays the demo and keeps them)")
    actors: dict[str, dict[str, str]] = json.loads(ACTORS.read_text())
    return actors


def payload_of(arguments: list[str], actors: dict[str, dict[str, str]]) -> dict[str, Any]:
    if len(arguments) == 1 and arguments[0].lstrip().startswith("{"):
        given: dict[str, Any] = json.loads(arguments[0])
        return given
    values: dict[str, Any] = {}
    for argument in arguments:
        name, sep, text = argument.partition("=")
        if not sep:
            raise SystemExit(f"{argument!r}: write fields as name=value")
        if text.startswith("@"):
            actor = actors.get(text[1:])
            if actor is None:
                raise SystemExit(f"no actor {text[1:]!r}: {', '.join(actors)}")
            values[name] = actor["id"]
            continue
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            values[name] = text
    return values


def _cached_token(name: str) -> str | None:
    if not TOKENS.exists():
        return None
    entry = json.loads(TOKENS.read_text()).get(name)
    if entry and datetime.fromisoformat(entry["expires_at"]) > datetime.now(UTC):
        return str(entry["token"])
    return None


def _keep_token(name: str, session: cmd.Session) -> None:
    kept = json.loads(TOKENS.read_text()) if TOKENS.exists() else {}
    kept[name] = {"token": session.token, "expires_at": session.expires_at.isoformat()}
    TOKENS.touch(mode=0o600)
    TOKENS.write_text(json.dumps(kept))


def _mails() -> set[Path]:
    return set(MAIL.glob("*.eml")) if MAIL.exists() else set()


async def _code_by_mail(address: str, before: set[Path], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(_mails() - before):
            mail = email.message_from_bytes(path.read_bytes(), policy=default)
            assert isinstance(mail, EmailMessage)
            if address not in str(mail["To"]):
                continue
            body = mail.get_body(preferencelist=("plain",))
            found = re.search(r"\b(\d{6})\b", body.get_content() if body is not None else "")
            if found:
                return found[1]
        await asyncio.sleep(0.3)
    raise SystemExit(f"no one-time code arrived for {address} in {MAIL}/ within {timeout}s")


async def sign_in(client: Client, name: str, actor: dict[str, str]) -> str:
    token = _cached_token(name)
    if token is not None:
        return token
    if actor["kind"] == "holder":
        before = _mails()
        await client.send(cmd.RequestHolderCode(ins=actor["id"]))
        code = await _code_by_mail(actor["email"], before)
        session = await client.send(cmd.SignInHolder(ins=actor["id"], code=code))
    else:
        session = await client.sign_in_with_card(actor["kind"], actor["id"], actor["card_key"])
    _keep_token(name, session)
    return session.token


async def run(
    actor_name: str | None, command_name: str, arguments: list[str], queue: str | None = None
) -> int:
    contract = contracts().get(command_name)
    if contract is None:
        raise SystemExit(
            f"no command {command_name!r}; `python -m scripts.cli commands` lists them"
        )
    if contract.QUEUE == EVERY_QUEUE and queue is None:
        raise SystemExit(f"{command_name} is answered on every queue: say which with --queue")
    actors = load_actors()
    try:
        command = contract.model_validate(payload_of(arguments, actors))
    except ValidationError as exc:
        print(f"not a valid {command_name}:\n{exc}", file=sys.stderr)
        return 2
    environment = Environment.from_json((RUN / "environment.json").read_text())
    kind = "patient-app" if actor_name and actors[actor_name]["kind"] == "holder" else None
    rpc = RpcClient(environment.client_url(kind or "practice-software"), name="cli", timeout=15)
    await rpc.connect()
    try:
        client = Client(rpc)
        token = None
        if contract.AUTHENTICATED:
            if actor_name is None:
                raise SystemExit(f"{command_name} needs a signed-in actor: --as <actor>")
            token = await sign_in(client, actor_name, actors[actor_name])
        try:
            reply = await client.send(command, token=token, queue=queue)
        except RpcError as refused:
            rule = f" (rule {refused.rule})" if refused.rule else ""
            print(f"refused: [{refused.code}] {refused.message}{rule}", file=sys.stderr)
            return 1
        print(reply.model_dump_json(indent=2))
        return 0
    finally:
        await rpc.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cli", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--as", dest="actor", help="the demo actor to sign in as (see `actors`)")
    parser.add_argument("--queue", help="for Ping, answered on every queue: which one")
    parser.add_argument("command", help="a command's name, `commands` or `actors`")
    parser.add_argument("fields", nargs="*", help="name=value ... or one JSON object")
    args = parser.parse_args(argv)
    if args.command == "commands":
        print(describe())
        return 0
    if args.command == "actors":
        for name, actor in load_actors().items():
            print(f"{name:<10} {actor['kind']:<13} {actor['id']}")
        return 0
    if args.actor is not None and args.actor not in load_actors():
        raise SystemExit(f"no actor {args.actor!r}: {', '.join(load_actors())}")
    return asyncio.run(run(args.actor, args.command, args.fields, args.queue))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
