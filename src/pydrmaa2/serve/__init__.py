"""``drmaa2 serve``: one user's store and trackers over HTTP (docs/serve.md), a Starlette app
on ``pydrmaa2.aio`` served by uvicorn. Needs ``pip install 'pydrmaa2[serve]'``.
"""

from ._run import run
from .app import serve_app

__all__ = ["run", "serve_app"]
