"""Reference profiles on disk: one Parquet file with the metadata as JSON inside it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from detectors.profile import METADATA_KEY, ProfileFormatError, ReferenceProfile
from exporter.errors import UserError
from exporter.offline.tables import is_parquet


def save_profile(profile: ReferenceProfile, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a profile."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(profile.to_table(), temp, compression="zstd")
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target


def is_profile(path: str | Path) -> bool:
    """True when ``path`` is a Parquet file carrying profile metadata."""
    p = Path(path)
    try:
        if not p.is_file() or not is_parquet(p):
            return False
        metadata = pq.read_schema(p).metadata or {}
    except (OSError, pa.ArrowException):
        return False
    return METADATA_KEY in metadata


def load_profile(path: str | Path) -> ReferenceProfile:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such profile")
    try:
        # ParquetFile, not pq.read_table: the latter's dataset layer imports pandas.
        table = pq.ParquetFile(p).read()
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{p}: unreadable profile: {str(exc).splitlines()[0]}") from None
    try:
        return ReferenceProfile.from_table(table)
    except ProfileFormatError as exc:
        raise UserError(f"{p}: {exc}") from None
