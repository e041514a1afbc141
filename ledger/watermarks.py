"""Watermarks: how far each stream of an org has been read (timezone-aware UTC)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ledger.base import LedgerBase
from ledger.clock import to_utc, utcnow
from ledger.models import WatermarkRecord

WATERMARKS = WatermarkRecord.__table__


class WatermarksMixin(LedgerBase):
    """Per (org, stream) high-water marks, e.g. ``zoho:Invoices`` or ``xero:Payments``."""

    def get_watermark(self, org: str, stream: str) -> datetime | None:
        """The stored watermark (None before the first successful read of the stream)."""
        with self._read() as session:
            return session.execute(
                select(WATERMARKS.c.value).where(WATERMARKS.c.org == org, WATERMARKS.c.stream == stream)
            ).scalar_one_or_none()

    def set_watermark(self, org: str, stream: str, value: datetime) -> None:
        """Store ``value`` (aware; converted to UTC). Moving backwards is allowed: it forces a re-read."""
        value = to_utc(value, what="watermark")
        stmt = self._upsert(WATERMARKS, ["org", "stream"], ["value", "updated_at"])
        with self._write() as session:
            session.execute(stmt, [{"org": org, "stream": stream, "value": value, "updated_at": utcnow()}])

    def watermarks(self, org: str) -> dict[str, datetime]:
        """Every stream's watermark of ``org``."""
        with self._read() as session:
            rows = session.execute(
                select(WATERMARKS.c.stream, WATERMARKS.c.value).where(WATERMARKS.c.org == org)
            ).all()
        return {row.stream: row.value for row in rows}
