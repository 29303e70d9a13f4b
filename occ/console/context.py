"""The typed keys of what the console keeps on its application and on each request."""

from __future__ import annotations

import jinja2
from aiohttp import web
from sqlalchemy import Engine

from occ.console.admin import Admin
from occ.console.dashboard import MetricsFeed
from occ.console.security import SignIns

ADMIN = web.AppKey("admin", Admin)
ENGINE = web.AppKey("engine", Engine)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
METRICS = web.AppKey("metrics", MetricsFeed)
UPLOAD_MAX_BYTES = web.AppKey("upload_max_bytes", int)
SIGNINS = web.AppKey("signins", SignIns)
