"""access's settings: the common ones, and where the authorization matrix is read from."""

from __future__ import annotations

from pathlib import Path

from libs.settings import ServiceSettings
from services.access.domain import MATRIX_FILE


class AccessSettings(ServiceSettings):
    # ACC_07: the reviewed matrix (a ConfigMap in Kubernetes); checked at start.
    access_matrix_file: Path = MATRIX_FILE
