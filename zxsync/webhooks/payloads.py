"""What Xero and Zoho post to us (pydantic models at the boundary; unknown keys are kept, not refused)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class XeroEvent(_Open):
    """One Xero event: which resource of which tenant changed (ids only: the sync reads it)."""

    resource_url: str | None = Field(default=None, alias="resourceUrl")
    resource_id: str = Field(alias="resourceId")
    event_date_utc: str | None = Field(default=None, alias="eventDateUtc")
    event_type: str = Field(alias="eventType")
    event_category: str = Field(alias="eventCategory")
    tenant_id: str = Field(alias="tenantId")
    tenant_type: str | None = Field(default=None, alias="tenantType")


class XeroWebhookPayload(_Open):
    """Xero's webhook body; an empty ``events`` list is an intent-to-receive probe."""

    events: list[XeroEvent] = Field(default_factory=list)
    first_event_sequence: int = Field(default=0, alias="firstEventSequence")
    last_event_sequence: int = Field(default=0, alias="lastEventSequence")
    entropy: str | None = None


class ZohoNotification(_Open):
    """A Zoho CRM notification callback (``/actions/watch``): module, operation and record ids."""

    server_time: int | None = None
    query_params: dict[str, Any] = Field(default_factory=dict)
    module: str
    resource_uri: str | None = None
    ids: list[str] = Field(default_factory=list)
    affected_fields: list[Any] = Field(default_factory=list)
    operation: str
    channel_id: str
    token: str | None = None

    @field_validator("channel_id", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v

    @field_validator("ids", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        return [str(i) for i in v] if isinstance(v, list) else v
