"""`pattern ui`: the Flask application and its local server (loaded only by that command).

Flask only parses requests and renders the templates; what a page shows comes from
`web.views`, which runs the commands' own functions.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..catalogue import Catalogue
from ..errors import CatalogueError, PatternError, UsageError
from ..yamlio import MANIFEST_LIMIT
from . import views

FORM_SLACK = 256 << 10  # the other fields of the inject form, beside a manifest at its limit
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name of a Host header without its port ([::1]:8080 -> ::1)."""
    if host.startswith("[") and "]" in host:
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def create_app(catalogue_root: Path | None = None, *, loopback_only: bool = True) -> Flask:
    """The application; with `loopback_only`, a request whose Host is not a loopback name is
    refused (a web page elsewhere cannot reach it through a DNS name that points here)."""
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MANIFEST_LIMIT + FORM_SLACK,
                      MAX_FORM_MEMORY_SIZE=MANIFEST_LIMIT + 1)
    catalogue = Catalogue(catalogue_root)

    def everything() -> list[Any]:
        return catalogue.all()

    @app.before_request
    def _host() -> Any:
        if loopback_only and host_name(request.host) not in LOOPBACK_NAMES:
            return _problem(400, f"Host {request.host[:80]!r} is not this machine's loopback "
                            "address: open the URL pattern ui printed")
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    def _wants_json() -> bool:
        return request.path.startswith("/api/")

    def _problem(status: int, message: str) -> Any:
        if _wants_json():
            return jsonify({"ok": False, "errors": {}, "problems": [message]}), status
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_: RequestEntityTooLarge) -> Any:
        return _problem(413, f"the request is larger than the {MANIFEST_LIMIT >> 20} MiB "
                        "pattern inject reads (plus its form)")

    @app.errorhandler(views.UploadTooLarge)
    def _upload_too_large(error: views.UploadTooLarge) -> Any:
        return _problem(413, str(error))

    @app.errorhandler(CatalogueError)
    def _unknown(error: CatalogueError) -> Any:
        page = request.endpoint in ("pattern_page", "example_file")
        return _problem(404 if page else 400, str(error))

    @app.errorhandler(PatternError)
    def _bad(error: PatternError) -> Any:
        return _problem(400, str(error))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        return _problem(error.code or 400, error.description or error.name)

    @app.get("/")
    def catalogue_page() -> Any:
        return render_template("catalogue.html", patterns=everything())

    @app.get("/patterns/<name>/")
    def pattern_page(name: str) -> Any:
        return render_template("pattern.html", page=views.pattern_page(catalogue, name))

    @app.get("/patterns/<name>")
    def pattern_redirect(name: str) -> Any:
        return redirect(url_for("pattern_page", name=name))

    @app.get("/patterns/<name>/examples/<file>")
    def example_file(name: str, file: str) -> Any:
        data, mimetype = views.example_file(catalogue, name, file)
        return Response(data, mimetype=mimetype)

    def _form() -> dict[str, str]:
        source = request.form if request.method == "POST" else request.args
        return {key: source.get(key, "") for key in source}

    def _page(template: str, run: Callable[[], views.Result]) -> Any:
        result = run()
        status = 200 if result.ok or views.editing(_form()) or request.method == "GET" else 422
        return render_template(template, result=result, patterns=everything(),
                               diff=views.diff_lines(result.diff)), status

    def _json(run: Callable[[], views.Result]) -> Any:
        result = run()
        return jsonify(result.as_json()), 200 if result.ok else 422

    def _compose() -> views.Result:
        return views.compose_view(catalogue, _form())

    def _upload() -> bytes | None:
        file = request.files.get("upload")
        if file is None or not file.filename:
            return None
        data: bytes = file.read(MANIFEST_LIMIT + 1)
        return data

    def _inject() -> views.Result:
        return views.inject_view(catalogue, _form(), _upload())

    @app.route("/compose", methods=["GET", "POST"])
    def compose_page() -> Any:
        return _page("compose.html", _compose)

    @app.post("/compose/download")
    def compose_download() -> Any:
        result = _compose()
        if not result.ok:
            return _page("compose.html", lambda: result)
        name = (_form().get("name") or "demo").strip()
        return Response(result.output, mimetype="application/yaml", headers={
            "Content-Disposition": f'attachment; filename="{name}.yaml"'})

    @app.post("/api/compose")
    def compose_api() -> Any:
        return _json(_compose)

    @app.route("/inject", methods=["GET", "POST"])
    def inject_page() -> Any:
        return _page("inject.html", _inject)

    @app.post("/api/inject")
    def inject_api() -> Any:
        return _json(_inject)

    @app.get("/favicon.ico")
    def favicon() -> Any:
        abort(404)

    return app


def serve(host: str, port: int, catalogue_root: Path | None, say: Callable[[str], None]
          ) -> None:
    """Serve until interrupted; says the URL (and a warning off loopback) first."""
    from werkzeug.serving import make_server

    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--host {host[:80]!r}: give an IP address, e.g. 127.0.0.1") from None
    loopback = is_loopback(host)
    # Our own socket, so a port in use is our one error line (werkzeug would print and exit).
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(64)
    except OSError as error:
        listener.close()
        raise PatternError(f"cannot listen on {host}:{port}: {error.strerror or error}"
                           ) from None
    port = listener.getsockname()[1]
    server = make_server(host, port,
                         create_app(catalogue_root, loopback_only=loopback), threaded=True,
                         fd=listener.fileno())
    shown = f"[{host}]" if ":" in host else host
    if not loopback:
        say(f"warning: {host} is not a loopback address: anyone who can reach this machine "
            "can use this page")
    say(f"pattern ui: http://{shown}:{port}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        listener.close()
