"""dossier: documents (metadata + content encrypted at rest), asking access before every act.

python -m services.dossier
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs import spaces
from libs.runtime import Runtime
from services.dossier import handlers, service
from services.dossier.keys import rewrapper
from services.dossier.parts import upload_pruner
from services.dossier.settings import DossierSettings

NAME = "dossier"
Settings = DossierSettings


def build(settings: DossierSettings | None = None) -> Runtime[DossierSettings]:
    runtime = Runtime(
        NAME,
        settings or DossierSettings(),
        Path(__file__).parent / "migrations",
        shared_migrations=spaces.MIGRATIONS,
    )
    handlers.register(runtime)
    # DOC_11: after a master key rotation, every document key moves to the new key meanwhile.
    rewrapping = rewrapper(runtime, service.master_keys(runtime.settings))
    runtime.add_background(rewrapping.start, rewrapping.stop)
    pruner = upload_pruner(runtime)
    runtime.add_background(pruner.start, pruner.stop)
    return runtime


def app() -> FastStream:
    return build().app()
