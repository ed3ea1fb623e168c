"""Reviewer web UI: server-rendered page shells plus small static scripts.

The pages carry no item data: the scripts fetch it with the bearer token kept in
``sessionStorage`` (no cookie, so no CSRF surface) and render model text only through
``textContent``. The CSP forbids inline script, so a template can never smuggle one in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
PAGES = {
    "login": "Sign in",
    "task": "Review",
    "dashboard": "Queues",
    "history": "Item history",
}


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)  # no icon; keeps browser consoles free of 404s

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/ui/task", status_code=303)

    @app.get("/ui/{page}", include_in_schema=False, response_class=HTMLResponse)
    async def page(
        request: Request,
        page: Annotated[str, PathParam(pattern=r"^(login|task|dashboard|history)$")],
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request, f"{page}.html", {"page": page, "title": PAGES[page]}
        )
