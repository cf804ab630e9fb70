"""The normalized schema: field names, their meaning, and a fetched snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Names follow cloud-init's instance-data v1 keys where one exists (instance_id, region,
# availability_zone -> zone) and map 1:1 onto OpenTelemetry cloud.* / host.* attributes.
FIELDS: tuple[str, ...] = (
    "provider",
    "instance_id",
    "hostname",
    "instance_type",
    "image_id",
    "region",
    "zone",
    "private_ipv4",
    "public_ipv4",
    "account_id",
    "tags",
)
OVERRIDABLE: tuple[str, ...] = ("hostname", "region", "zone", "account_id")


@dataclass
class Snapshot:
    """One fetch from a metadata service: values plus why the absent ones are absent."""

    values: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: Any, reason_if_empty: str) -> None:
        if value in (None, "", {}, []):
            self.missing[name] = reason_if_empty
        else:
            self.values[name] = value

    def lack(self, name: str, reason: str) -> None:
        self.missing[name] = reason

    def with_fallbacks(self, fallbacks: dict[str, str]) -> Snapshot:
        """Fill fields the cloud does not report from user-supplied values."""
        values = dict(self.values)
        missing = dict(self.missing)
        for name, value in fallbacks.items():
            if value and name not in values:
                values[name] = value
                missing.pop(name, None)
        return Snapshot(values, missing)

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {name: self.values.get(name) for name in FIELDS}
        doc["missing"] = {
            n: self.missing.get(n, "not reported by the metadata service")
            for n in FIELDS
            if doc[n] is None
        }
        return doc
