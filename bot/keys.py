"""Typed application state (aiohttp AppKey) shared by server, webhooks and the Open API."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.ingest import IngestWriter
from core.jobs import JobContext
from core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
WRITER = web.AppKey("writer", IngestWriter)
JOBS = web.AppKey("jobs", JobContext)
RUNNER = web.AppKey("runner", Any)
INTEGRATION_CACHE = web.AppKey("integration_cache", dict)
DIRECTORIES = web.AppKey("directories", dict)  # Platform -> mapping_tables.directory.Directory
ADAPTER_MAP = web.AppKey("adapters", dict)  # Platform -> built Adapter (from IM apps)
HTTP = web.AppKey("http", object)  # the shared aiohttp.ClientSession
