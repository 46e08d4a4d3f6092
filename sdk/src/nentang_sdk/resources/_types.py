"""Argument types shared by the resources."""

from __future__ import annotations

from uuid import UUID

ID = str | UUID
"""An identifier as the service gave it (a UUID object or its text)."""
