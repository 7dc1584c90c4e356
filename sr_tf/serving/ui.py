"""The web page at `/`: try the served models in a browser.

The page (`static/index.html`, `app.js`, `style.css`: no build step, nothing fetched from other
hosts) uses the server's public REST API like any client: model status for the versions, metadata
for the signatures, and `:predict` with the `encoded_image` signature (the image as `{"b64": ...}`).
The one route of its own is `GET /ui/models`, the names of the served models, which TF Serving's
API has no call for, and for blend exports (`encoded_image_blended`, a `strength` input) the range of
their newest version's strength (`{"models": [...], "strength": {"NAME": [low, high]}}`), which a
SignatureDef does not record; the page's slider spans it.
"""

from __future__ import annotations

from importlib import resources

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = resources.files("sr_tf.serving") / "static"
# The browser refuses anything from another host, and any inline script: the page needs only this
# server (its files and API) and the blob: URLs of the images it shows.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self' blob: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def routes(core) -> list[BaseRoute]:
    """Routes of the page for the server whose `PredictionCore` is `core` (it names the models)."""
    static = str(STATIC)

    async def index(request: Request) -> Response:
        return FileResponse(f"{static}/index.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    async def models(request: Request) -> Response:
        names = sorted(core.manager.model_names())
        body: dict = {"models": names}
        ranges = {}
        for name in names:
            try:
                found = core.manager.resolve(name).strength_range
            except Exception:  # noqa: BLE001 - no version loaded (yet): no slider for it
                continue
            if found is not None:
                ranges[name] = list(found)
        if ranges:
            body["strength"] = ranges
        return Response(orjson.dumps(body), media_type="application/json")

    return [
        Route("/", index, methods=["GET"]),
        Route("/ui/models", models, methods=["GET"]),
        Mount("/ui", StaticFiles(directory=static), name="ui"),
    ]
