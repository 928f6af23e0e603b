"""Population scale (issue 13): the two reads a holder's space serves most, among a national
population's data, measured on this machine:

    .venv/bin/python -m bench.population                 # 10 million traces, 1 million documents
    .venv/bin/python -m bench.population --total 1000000 --documents 200000   # a quicker look

In a fresh database (dropped afterwards) with access's and the dossier's own migrations (the
sources and their order read from each service's `build()`, as `python -m libs.migrate` does):

- 100,000 holders (`1` and 14 digits, as `bench.history` names them) plus one heavy holder, their
  spaces open in both services' projection;
- `--total` access traces (10 million) by `bench.history`'s own loader: `--holder-traces`
  (100,000) for the heavy holder, the rest spread over the 100,000; their actors are the 5,000
  professionals of `bench.history.ACTORS`;
- `--documents` documents (1 million): `--holder-documents` (5,000) for the heavy holder, the
  rest spread over the 100,000 (about 10 each). Deposited over five years in time order, so a
  holder's documents are scattered over the table as deposits make them; authored by the same
  5,000 professionals (the care history by the health insurance, the holder's own by the
  holder), with the dossier's real mix: sealed titles, keys wrapped, a few masked (DOC_06), held
  back and mostly released (DOC_07), replaced by a newer version, imported from the former DMP
  (SPC_08), deposited on behalf or naming a prescriber. Sealed columns hold random bytes of their
  real sizes; the content is a small stand-in (`--content-bytes`): the listing reads its length,
  never its bytes, and a real content would be stored out of line anyway.

Everything is loaded with COPY, each table's secondary indexes dropped for the load and made
again after it, as the migrations define them; then ANALYZE. Then, `--repeat` times each:

- (a) what `ListAccessHistory` runs, `services.access.repository.traces_page`: the newest 50
  traces of the heavy holder and of an ordinary one, and 50 of the heavy holder's deep by keyset;
- (b) what the dossier's `ReadDossier` (the dossier listing) runs,
  `services.dossier.repository.page_candidates` with the arguments `services.dossier.service`
  passes for a professional reader: a physician the holder authorized (access's own `decide`
  gives the scope: every type, masked documents only their own, held-back ones included, current
  versions only, the care history of the last 24 months), pages of 20 and 50, newest first, for
  the heavy holder (its newest page, and a page deep by the cursor's keyset) and for an ordinary
  holder; then a nurse (the types the matrix gives), and `service.page_of` whole (the read-only
  transaction, the candidates and the page's rows loaded with their sealed content);
- beside them, in the same run, the database's floor: `SELECT 1` round trips, and the four
  round trips of a read-only transaction of two statements.

Percentiles in milliseconds (target: p99 under 5 ms for (a) and (b)); the figures also go as
JSON to `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import asyncpg

from bench.history import ACTORS, START, copy_in_batches, line, seed, timed
from libs import db
from libs import migrate as migrations
from libs.contracts import commands as cmd
from libs.paging import Position
from libs.periods import add_calendar_years
from libs.tokens import Claims
from services.access import domain as access_domain
from services.access import repository as access_repository
from services.dossier import domain as dossier_domain
from services.dossier import repository as dossier_repository
from services.dossier import service as dossier_service
from services.dossier.settings import DossierSettings

DATABASE = "dmp_bench_population"
HOLDERS = 100_000  # as bench.history spreads the traces: f"1{n:014d}"
HOLDER = "185057512345678"  # the heavy holder, bench.history's
ORDINARY = f"1{4_242:014d}"
SPAN = timedelta(days=5 * 365)  # bench.history's traces span the same five years
NOW = START + SPAN  # the service's clock during the reads
LEGACY_UNTIL = datetime(2021, 7, 1, tzinfo=UTC)  # SPC_08: the former DMP's records
TARGET_MS = 5.0

GIVEN = ("Claire", "Jean", "Sophie", "Pierre", "Marie", "Luc", "Anne", "Paul", "Nadia", "Hugo")
SURNAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Moreau")
NAMES = [f"Dr {GIVEN[i % 10]} {SURNAMES[i // 10 % 8]}" for i in range(len(ACTORS))]
# Type, share, media type: what a population's dossiers hold, lab results and the health
# insurance's care history first.
KINDS = (
    ("lab_report", 20, "application/pdf"),
    ("care_history", 18, "application/fhir+json"),
    ("prescription", 15, "application/pdf"),
    ("imaging_report", 8, "application/pdf"),
    ("discharge_letter", 6, "application/pdf"),
    ("liaison_letter", 6, "application/pdf"),
    ("act_report", 5, "application/pdf"),
    ("medical_summary", 4, "text/xml"),
    ("vaccination", 4, "application/pdf"),
    ("pharmacy_dispensation", 4, "application/fhir+json"),
    ("certificate", 2, "application/pdf"),
    ("operative_report", 2, "application/pdf"),
    ("professional_letter", 2, "application/pdf"),
    ("holder_document", 2, "image/jpeg"),
    ("administrative", 1, "application/pdf"),
    ("identity", 1, "application/pdf"),
    ("occupational_health", 0.5, "application/pdf"),
    ("advance_directives", 0.3, "application/pdf"),
    ("organ_donation", 0.2, "application/pdf"),
)
TYPES = [kind[0] for kind in KINDS]
MEDIA = {kind[0]: kind[2] for kind in KINDS}
CUMULATIVE = [sum(kind[1] for kind in KINDS[: i + 1]) for i in range(len(KINDS))]
COLUMNS = [
    "document_id",
    "seq",
    "ins",
    "document_type",
    "title_nonce",
    "title_sealed",
    "media_type",
    "author_kind",
    "author_id",
    "author_name",
    "decision_id",
    "decision_rule",
    "deposited_at",
    "masked",
    "nonce",
    "content",
    "key_id",
    "key_nonce",
    "wrapped_key",
    "content_sha256",
    "size",
    "legacy_id",
    "legacy_export",
    "staged",
    "held_back",
    "released_at",
    "release_reason",
    "version",
    "replaces",
    "replaced_by",
    "deposited_by_id",
    "deposited_by_name",
    "parts",
    "prescriber_id",
]


def holder_of(owner: int) -> str:
    return HOLDER if owner == HOLDERS else f"1{owner:014d}"


def _author(rng: random.Random, document_type: str, ins: str) -> tuple[str, str, str, str]:
    """(kind, id, name, the rule of the decision that let the deposit in)."""
    if document_type == "care_history":
        return "operator", "cnam", "Assurance Maladie", "DOC_08"
    if document_type == "holder_document":
        return "holder", ins, "Titulaire", "DOC_05"
    n = rng.randrange(len(ACTORS))
    if document_type == "administrative":
        return "professional", ACTORS[n], NAMES[n], "DOC_10"
    return "professional", ACTORS[n], NAMES[n], "ACC_04" if rng.random() < 0.3 else "ACC_05"


def _documents(
    count: int, holder_documents: int, content_bytes: int, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """The rows, in deposit order (time and seq together), each holder's scattered among all."""
    rest = count - holder_documents
    per, extra = divmod(rest, HOLDERS)
    owners = [HOLDERS] * holder_documents
    for n in range(HOLDERS):
        owners.extend([n] * (per + (n < extra)))
    rng.shuffle(owners)
    remaining = [per + (n < extra) for n in range(HOLDERS)] + [holder_documents]
    # A document to be replaced: its successor (id, replaced, version, type, author) is the
    # holder's next deposit.
    pending: dict[int, tuple[uuid.UUID, uuid.UUID, int, str, tuple[str, str, str, str]]] = {}
    step = SPAN / count
    for seq, owner in enumerate(owners, 1):
        ins = holder_of(owner)
        remaining[owner] -= 1
        at = START + step * seq
        successor = pending.pop(owner, None)
        if successor is None:
            document_id, replaces, version = uuid.uuid4(), None, 1
            document_type = rng.choices(TYPES, cum_weights=CUMULATIVE)[0]
            author = _author(rng, document_type, ins)
        else:
            document_id, replaces, version, document_type, author = successor
        replaced_by = None
        if remaining[owner] > 0 and author[0] == "professional" and rng.random() < 0.03:
            replaced_by = uuid.uuid4()
            pending[owner] = (replaced_by, document_id, version + 1, document_type, author)
        kind, author_id, author_name, rule = author
        title = rng.randint(20, 70) + 16
        content = rng.randint(content_bytes // 2, content_bytes) + 16
        raw = rng.randbytes(12 + title + 12 + content + 12 + 48 + 32)
        legacy = at < LEGACY_UNTIL and replaces is None and rng.random() < 0.5
        held_back = kind == "professional" and rng.random() < 0.01
        released = None
        if held_back and at < NOW - timedelta(days=31):
            released = at + timedelta(days=rng.randint(1, 30))
        on_behalf = kind == "professional" and rng.random() < 0.02
        prescriber = (
            rng.choice(ACTORS)
            if document_type in ("lab_report", "imaging_report") and rng.random() < 0.5
            else None
        )
        yield (
            document_id,
            seq,
            ins,
            document_type,
            raw[:12],
            raw[12 : 12 + title],
            MEDIA[document_type],
            kind,
            author_id,
            author_name,
            uuid.uuid4(),
            "SPC_08" if legacy else "DOC_03" if on_behalf else rule,
            at,
            document_type != "care_history" and rng.random() < 0.03,
            raw[12 + title : 24 + title],
            raw[24 + title : 24 + title + content],
            "k1",
            raw[24 + title + content : 36 + title + content],
            raw[36 + title + content : 84 + title + content],
            raw[84 + title + content :],
            content - 16,
            f"L{seq:012d}" if legacy else None,
            "dmp-export-2021-06" if legacy else None,
            False,
            held_back,
            released,
            None if released is None else rng.choice(("consultation", "one_month")),
            version,
            replaces,
            replaced_by,
            rng.choice(ACTORS) if on_behalf else None,
            "Secrétariat médical" if on_behalf else None,
            None,
            prescriber,
        )


async def indexes_off(conn: db.Conn, schema: str, table: str) -> Callable[[], Awaitable[None]]:
    """Drops the table's unique constraints and secondary indexes (as `bench.history` does for
    the traces) and its user triggers; returns what makes them again, as defined."""
    relation = f"{schema}.{table}"
    constraints = await conn.fetch(
        """SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
           WHERE conrelid = $1::regclass AND contype = 'u'""",
        relation,
    )
    indexes = await conn.fetch(
        """SELECT indexname, indexdef FROM pg_indexes
           WHERE schemaname = $1 AND tablename = $2 AND indexname <> $2 || '_pkey'
             AND indexname NOT IN (SELECT conname FROM pg_constraint
                                   WHERE conrelid = $3::regclass)""",
        schema,
        table,
        relation,
    )
    for constraint in constraints:
        await conn.execute(f'ALTER TABLE {relation} DROP CONSTRAINT "{constraint["conname"]}"')
    for index in indexes:
        await conn.execute(f'DROP INDEX {schema}."{index["indexname"]}"')
    await conn.execute(f"ALTER TABLE {relation} DISABLE TRIGGER USER")

    async def restore() -> None:
        await conn.execute(f"ALTER TABLE {relation} ENABLE TRIGGER USER")
        for index in indexes:
            await conn.execute(index["indexdef"])
        for constraint in constraints:
            await conn.execute(
                f'ALTER TABLE {relation} ADD CONSTRAINT "{constraint["conname"]}"'
                f" {constraint['definition']}"
            )

    return restore


async def seed_spaces(conn: db.Conn, schema: str) -> None:
    """The holders' spaces, open, in the service's projection (libs/spaces.py)."""
    await conn.copy_records_to_table(
        "space_lifecycle",
        schema_name=schema,
        records=[(holder_of(n), "open", START) for n in range(HOLDERS + 1)],
        columns=["ins", "status", "changed_at"],
    )


async def seed_documents(
    conn: db.Conn, count: int, holder_documents: int, content_bytes: int
) -> float:
    """Loads `count` documents with COPY; returns the seconds it took, indexes included."""
    rng = random.Random(13)
    started = time.perf_counter()
    restore = await indexes_off(conn, "dossier", "documents")
    await copy_in_batches(
        conn,
        "dossier",
        "documents",
        COLUMNS,
        _documents(count, holder_documents, content_bytes, rng),
        100_000,
    )
    await restore()
    await conn.execute(
        "SELECT setval(pg_get_serial_sequence('dossier.documents', 'seq'), max(seq))"
        " FROM dossier.documents"
    )
    await conn.execute("VACUUM (ANALYZE) dossier.documents")
    return time.perf_counter() - started


def reader_scope(profession: str, rpps: str) -> dossier_domain.Scope:
    """The scope the dossier reads within for a professional the holder authorized (ACC_05):
    access's own decision, as its reply carries it, made a scope as `read_dossier` makes it."""
    actor = Claims(
        sub=rpps, kind="professional", name=NAMES[0], profession=profession, iat=NOW, exp=NOW
    )
    holder = access_domain.HolderSettings("open", authorization=access_domain.Authorization())
    decision = access_domain.decide(actor, HOLDER, "read", None, holder, NOW)
    assert decision.granted, decision
    reply = cmd.Decision(
        decision_id=uuid.uuid4(),
        granted=decision.granted,
        rule=decision.rule,
        reason=decision.reason,
        document_types=decision.document_types,
        include_masked=decision.include_masked,
        emergency=decision.emergency,
        include_held_back=decision.include_held_back,
    )
    return dossier_domain.Scope.of(reply, rpps)


class _Capture:
    """Stands for a connection to learn the SQL a repository function sends."""

    query = ""
    args: tuple[Any, ...] = ()

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        self.query, self.args = query, args
        return []


def figures(times: list[float]) -> dict[str, float]:
    q = statistics.quantiles(times, n=100)
    return {"p50": round(q[49], 3), "p99": round(q[98], 3), "max": round(max(times), 3)}


async def run(
    url: str,
    total: int,
    holder_traces: int,
    documents: int,
    holder_documents: int,
    deep_documents: int,
    content_bytes: int,
    repeat: int,
) -> dict[str, Any]:
    admin = await asyncpg.connect(url)
    await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    await admin.execute(f"CREATE DATABASE {DATABASE}")
    bench_url = url.rsplit("/", 1)[0] + f"/{DATABASE}"
    pools: list[db.Pool] = []
    try:
        access = migrations.plan("access")
        dossier = migrations.plan("dossier")
        access_pool = await db.create_pool(bench_url, access.schema, max_size=1)
        pools.append(access_pool)
        dossier_pool = await db.create_pool(bench_url, dossier.schema, max_size=2)
        pools.append(dossier_pool)
        await db.migrate(access_pool, access.schema, access.sources)
        await db.migrate(dossier_pool, dossier.schema, dossier.sources)
        async with access_pool.acquire() as traces_conn, dossier_pool.acquire() as conn:
            await seed_spaces(traces_conn, access.schema)
            await seed_spaces(conn, dossier.schema)
            print(f"seeding {total:,} traces ({holder_traces:,} for one holder) with COPY")
            traces_seconds = await seed(traces_conn, total, HOLDER, holder_traces)
            print(
                f"seeding {documents:,} documents ({holder_documents:,} for one holder) with COPY"
            )
            documents_seconds = await seed_documents(
                conn, documents, holder_documents, content_bytes
            )
            sizes = await conn.fetchrow(
                """SELECT (SELECT count(*) FROM access.traces) AS traces,
                          (SELECT count(*) FROM dossier.documents) AS documents,
                          (SELECT count(DISTINCT ins) FROM dossier.documents) AS holders,
                          (SELECT count(DISTINCT author_id) FROM dossier.documents
                           WHERE author_kind = 'professional') AS professionals,
                          (SELECT count(*) FROM dossier.documents WHERE ins = $1) AS heavy,
                          (SELECT count(*) FROM dossier.documents WHERE ins = $2) AS ordinary,
                          (SELECT count(*) FROM access.traces WHERE ins = $2) AS ordinary_traces,
                          pg_total_relation_size('access.traces') AS traces_bytes,
                          pg_total_relation_size('dossier.documents') AS documents_bytes""",
                HOLDER,
                ORDINARY,
            )
            assert sizes is not None
            print(
                f"  {sizes['traces']:,} traces, {sizes['traces_bytes'] / 2**20:,.0f} MiB with"
                f" indexes, loaded in {traces_seconds:.0f} s\n"
                f"  {sizes['documents']:,} documents of {sizes['holders']:,} holders by"
                f" {sizes['professionals']:,} professionals,"
                f" {sizes['documents_bytes'] / 2**20:,.0f} MiB with indexes,"
                f" loaded in {documents_seconds:.0f} s\n"
            )

            deep_traces = min(20_000, holder_traces // 2)
            deep_trace = await traces_conn.fetchrow(
                "SELECT at, n FROM traces WHERE ins = $1 ORDER BY at DESC, n DESC OFFSET $2"
                " LIMIT 1",
                HOLDER,
                deep_traces,
            )
            assert deep_trace is not None

            async def traces(ins: str, after: Position | None = None) -> object:
                found = await access_repository.traces_page(
                    traces_conn, ins, 51, after, None, None, None
                )
                assert found
                return found

            deep_at = min(deep_documents, holder_documents // 2)
            deep_document = await conn.fetchrow(
                "SELECT deposited_at, seq FROM documents WHERE ins = $1"
                " ORDER BY deposited_at DESC, seq DESC OFFSET $2 LIMIT 1",
                HOLDER,
                deep_at,
            )
            assert deep_document is not None
            deep = Position(deep_document["deposited_at"], deep_document["seq"])
            # The reader: a professional who wrote some of the heavy holder's masked documents.
            reader = await conn.fetchval(
                "SELECT author_id FROM documents WHERE ins = $1 AND masked"
                " AND author_kind = 'professional' ORDER BY deposited_at DESC LIMIT 1",
                HOLDER,
            )
            reader = reader or ACTORS[0]
            physician = reader_scope("physician", reader)
            nurse = reader_scope("nurse", reader)
            # What `read_dossier` passes: no filter asked, current versions, DOC_08's 24 months.
            filters = dossier_repository.Filters(care_history_since=add_calendar_years(NOW, -2))

            async def listing(
                ins: str,
                page_size: int,
                after: Position | None = None,
                scope: dossier_domain.Scope = physician,
                on: Any = conn,
            ) -> list[asyncpg.Record]:
                found = await dossier_repository.page_candidates(
                    on,
                    ins,
                    document_types=None
                    if scope.document_types is None
                    else sorted(scope.document_types),
                    include_masked=scope.include_masked,
                    after=after,
                    limit=page_size + 1,
                    author=scope.author,
                    filters=filters,
                    include_held_back=scope.include_held_back,
                )
                assert found or on is not conn
                return found

            # `service.page_of` as `read_dossier` calls it, with the settings and pool it uses.
            context = cast(
                Any,
                SimpleNamespace(
                    runtime=SimpleNamespace(
                        settings=SimpleNamespace(
                            read_reply_budget_bytes=DossierSettings.model_fields[
                                "read_reply_budget_bytes"
                            ].default
                        ),
                        pool=dossier_pool,
                    )
                ),
            )

            async def page_of(ins: str, page_size: int) -> object:
                rows, _ = await dossier_service.page_of(
                    context, ins, physician, None, page_size, filters
                )
                assert rows
                return rows

            async def floor_transaction() -> None:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    await conn.fetchval("SELECT 1")
                    await conn.fetchval("SELECT 1")

            heavy, ordinary = f"{sizes['heavy']:,} documents", f"{sizes['ordinary']} documents"
            measures: list[tuple[str, str, Callable[[], Awaitable[object]]]] = [
                ("floor", "SELECT 1 (the database's floor)", lambda: conn.fetchval("SELECT 1")),
                (
                    "floor",
                    "read-only transaction, 2 × SELECT 1",
                    floor_transaction,
                ),
                (
                    "a",
                    f"newest 50 traces ({holder_traces:,} traces)",
                    lambda: traces(HOLDER),
                ),
                (
                    "a",
                    f"50 traces {deep_traces:,} deep (keyset)",
                    lambda: traces(HOLDER, Position(deep_trace["at"], deep_trace["n"])),
                ),
                (
                    "a",
                    f"newest 50 traces ({sizes['ordinary_traces']} traces)",
                    lambda: traces(ORDINARY),
                ),
                ("b", f"newest 20 documents ({heavy})", lambda: listing(HOLDER, 20)),
                ("b", f"newest 50 documents ({heavy})", lambda: listing(HOLDER, 50)),
                (
                    "b",
                    f"20 documents {deep_at:,} deep (cursor)",
                    lambda: listing(HOLDER, 20, deep),
                ),
                (
                    "b",
                    f"50 documents {deep_at:,} deep (cursor)",
                    lambda: listing(HOLDER, 50, deep),
                ),
                ("b", f"newest 20 documents ({ordinary})", lambda: listing(ORDINARY, 20)),
                ("b", f"newest 50 documents ({ordinary})", lambda: listing(ORDINARY, 50)),
                (
                    "b",
                    f"a nurse's newest 20 ({heavy})",
                    lambda: listing(HOLDER, 20, scope=nurse),
                ),
                ("page", f"page_of, newest 20 ({heavy})", lambda: page_of(HOLDER, 20)),
                ("page", f"page_of, newest 20 ({ordinary})", lambda: page_of(ORDINARY, 20)),
            ]
            results = [(group, name, await timed(repeat, call)) for group, name, call in measures]

            async def explain(
                on: Any, call: Callable[[Any], Awaitable[object]], generic: bool = False
            ) -> list[str]:
                """The plan of the SQL `call` sends, run on `on`; `generic`: the plan a prepared
                statement settles on after its fifth run when it finds it no dearer."""
                capture: Any = _Capture()
                await call(capture)
                explained = "EXPLAIN (ANALYZE, BUFFERS) "
                async with on.transaction():
                    if not generic:
                        rows = await on.fetch(explained + capture.query, *capture.args)
                    else:  # EXECUTE's parameters are the statement's, not its values
                        await on.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                        await on.execute("PREPARE bench_generic AS " + capture.query)
                        types = await on.fetchval(
                            "SELECT parameter_types::text[] FROM pg_prepared_statements"
                            " WHERE name = 'bench_generic'"
                        )
                        given = [
                            await on.fetchval(f"SELECT quote_literal($1::{t}::text)", value)
                            + f"::{t}"
                            for value, t in zip(capture.args, types, strict=True)
                        ]
                        rows = await on.fetch(
                            f"{explained}EXECUTE bench_generic({', '.join(given)})"
                        )
                        await on.execute("DEALLOCATE bench_generic")
                return [row[0] for row in rows]

            page = [row["document_id"] for row in (await listing(HOLDER, 20))[:20]]
            plans = {
                "newest 50 traces": await explain(
                    traces_conn,
                    lambda c: access_repository.traces_page(c, HOLDER, 51, None, None, None, None),
                ),
                "newest 50 documents": await explain(conn, lambda c: listing(HOLDER, 50, on=c)),
                "page_of's rows of the newest 20 (documents_by_id)": await explain(
                    conn, lambda c: dossier_repository.documents_by_id(c, HOLDER, page)
                ),
                "the same, generic plan (a prepared statement's from its sixth run)": await explain(
                    conn,
                    lambda c: dossier_repository.documents_by_id(c, HOLDER, page),
                    generic=True,
                ),
            }
        for pool in pools:
            await pool.close()
        pools.clear()

        print(
            f"the heavy holder: {holder_traces:,} traces among {sizes['traces']:,},"
            f" {holder_documents:,} documents among {sizes['documents']:,};"
            f" {repeat} runs each"
        )
        titles = {
            "floor": "floor",
            "a": "(a) ListAccessHistory: traces_page",
            "b": "(b) ReadDossier, a physician reading: page_candidates",
            "page": "beside (b), the whole page ReadDossier reads: service.page_of",
        }
        for group, title in titles.items():
            print(title)
            for name, times in (r[1:] for r in results if r[0] == group):
                print("  " + line(name, times))
        worst = {
            group: max(figures(r[2])["p99"] for r in results if r[0] == group) for group in titles
        }
        print(
            f"\nworst p99: traces {worst['a']:.2f} ms, listing {worst['b']:.2f} ms"
            f" (target {TARGET_MS:g} ms), floor {worst['floor']:.2f} ms"
        )
        for name, plan in plans.items():
            print(f"\nplan: {name}")
            for row in plan:
                print("  " + row)

        report = {
            "benchmark": "bench.population",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "repeat": repeat,
            "population": {
                "holders": HOLDERS + 1,
                "professionals": len(ACTORS),
                "traces": sizes["traces"],
                "heavy_holder_traces": holder_traces,
                "documents": sizes["documents"],
                "heavy_holder_documents": holder_documents,
                "ordinary_holder_documents": sizes["ordinary"],
                "ordinary_holder_traces": sizes["ordinary_traces"],
                "content_bytes": content_bytes,
            },
            "load": {
                "traces_seconds": round(traces_seconds, 1),
                "documents_seconds": round(documents_seconds, 1),
                "traces_bytes": sizes["traces_bytes"],
                "documents_bytes": sizes["documents_bytes"],
            },
            "target_p99_ms": TARGET_MS,
            "results_ms": [
                {"group": group, "name": name, **figures(times)} for group, name, times in results
            ],
            "worst_p99_ms": {
                "floor": worst["floor"],
                "traces": worst["a"],
                "listing": worst["b"],
                "page_of": worst["page"],
            },
            "met": {"traces": worst["a"] < TARGET_MS, "listing": worst["b"] < TARGET_MS},
            "plans": plans,
        }
    finally:
        for pool in pools:
            pool.terminate()
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.population")
    parser.add_argument("--total", type=int, default=10_000_000, help="access traces")
    parser.add_argument("--holder-traces", type=int, default=100_000)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--holder-documents", type=int, default=5_000)
    parser.add_argument(
        "--deep-documents", type=int, default=2_000, help="how deep the deep page starts"
    )
    parser.add_argument(
        "--content-bytes", type=int, default=256, help="the stand-in content's largest size"
    )
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--json", type=Path, default=Path(".run/bench-population.json"))
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    if args.documents < args.holder_documents or args.total < args.holder_traces:
        parser.error("the heavy holder's share cannot exceed the whole")
    report = asyncio.run(
        run(
            args.database_url,
            args.total,
            args.holder_traces,
            args.documents,
            args.holder_documents,
            args.deep_documents,
            args.content_bytes,
            args.repeat,
        )
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
