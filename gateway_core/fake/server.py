"""A hosted checkout page for the fake gateway, so a person can pay, decline or abandon.

Serves ``GET /c/<checkout id>`` (a page with the amount and three buttons) and
``POST /c/<checkout id>/{pay,decline,abandon}`` on 127.0.0.1 only, on a free port. A declined card
leaves the checkout open, as a provider's hosted page does: the payer is sent back to the page,
which says the card was declined and still offers to pay. It serves the
fake's 3-D Secure page too, where an ``AuthenticationRequired.action_url`` leads:
``GET /3ds/<payment id>`` (two buttons) and ``POST /3ds/<payment id>/{pass,fail}``, which do what
:meth:`~gateway_core.fake.FakeGateway.complete_3ds` and ``fail_3ds`` do and then send the payer
(``303 See Other``) to the authorization's ``return_url``, exactly as the host gave it; without
one, back to the page, which shows the payment's state. Start it with
:meth:`FakeCheckoutServer.start` (it points the fake's checkout URLs at itself) and stop it with
:meth:`stop`. Standard library only: it is a test and demo aid, not a production server.
"""

from __future__ import annotations

import html
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from gateway_core.errors import GatewayError
from gateway_core.fake.gateway import FakeGateway
from gateway_core.models import CheckoutStatus, PaymentState

__all__ = ["FakeCheckoutServer"]

_PAGE_RE = re.compile(r"^/c/(fake_cs_[0-9a-f]+)$")
_ACTION_RE = re.compile(r"^/c/(fake_cs_[0-9a-f]+)/(pay|decline|abandon)$")
_3DS_PAGE_RE = re.compile(r"^/3ds/(fake_pi_[0-9a-f]+)$")
_3DS_ACTION_RE = re.compile(r"^/3ds/(fake_pi_[0-9a-f]+)/(pass|fail)$")
#: The query the page is redirected back with after a declined card (a fixed flag: nothing is echoed).
_DECLINED = "declined=1"


class FakeCheckoutServer:
    """Serves the fake gateway's hosted checkout on ``http://127.0.0.1:<port>``."""

    def __init__(self, fake: FakeGateway) -> None:
        self.fake = fake
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeCheckoutServer:
        handler = _handler_for(self.fake)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-checkout", daemon=True)
        self._thread.start()
        self.fake.checkout_base_url = self.url
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeCheckoutServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _handler_for(fake: FakeGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "fake-checkout"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the gateway's own structlog lines say what happened."""

        def _send(self, status: HTTPStatus, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path  # the action_url's ?return_url= is the fake's to keep, not read here
            three_ds = _3DS_PAGE_RE.match(path)
            if three_ds is not None:
                self._3ds_page(three_ds.group(1))
                return
            match = _PAGE_RE.match(path)
            if match is None:
                self._send(HTTPStatus.NOT_FOUND, "<h1>Not found</h1>")
                return
            try:
                session = fake.checkout(match.group(1))
            except GatewayError as exc:
                self._send(HTTPStatus.NOT_FOUND, f"<h1>{html.escape(exc.message)}</h1>")
                return
            status = fake.status(session.id).state
            buttons = notice = ""
            if session.status is CheckoutStatus.OPEN:
                buttons = "".join(
                    f'<form method="post" action="/c/{session.id}/{action}"><button>{label}</button></form>'
                    for action, label in (("pay", "Pay"), ("decline", "Decline card"), ("abandon", "Abandon"))
                )
                if parts.query == _DECLINED:  # back from a declined card: the checkout takes another
                    notice = "<p><b>Your card was declined.</b> Try another card, or abandon.</p>"
            self._send(
                HTTPStatus.OK,
                "<!doctype html><title>Fake checkout</title>"
                f"<h1>Fake checkout (not live)</h1><p>Pay <b>{html.escape(str(session.amount))}</b></p>{notice}"
                f"<p>Checkout: {html.escape(session.status.value)}; payment: {html.escape(status.value)}</p>{buttons}",
            )

        def _3ds_page(self, payment_id: str) -> None:
            try:
                status = fake.status(payment_id)
            except GatewayError as exc:
                self._send(HTTPStatus.NOT_FOUND, f"<h1>{html.escape(exc.message)}</h1>")
                return
            buttons = ""
            if status.state is PaymentState.REQUIRES_ACTION:
                buttons = "".join(
                    f'<form method="post" action="/3ds/{payment_id}/{action}"><button>{label}</button></form>'
                    for action, label in (("pass", "Authenticate"), ("fail", "Fail authentication"))
                )
            self._send(
                HTTPStatus.OK,
                "<!doctype html><title>Fake 3-D Secure</title>"
                f"<h1>Fake 3-D Secure (not live)</h1><p>Authenticate <b>{html.escape(str(status.amount))}</b></p>"
                f"<p>Payment: {html.escape(status.state.value)}</p>{buttons}",
            )

        def _3ds_action(self, payment_id: str, action: str) -> None:
            try:
                if action == "pass":
                    fake.complete_3ds(payment_id)
                else:
                    fake.fail_3ds(payment_id)
                back = fake.return_url(payment_id)
            except GatewayError as exc:
                self._send(HTTPStatus.CONFLICT, f"<h1>{html.escape(exc.message)}</h1>")
                return
            self._redirect(back or f"/3ds/{payment_id}")

        def do_POST(self) -> None:
            three_ds = _3DS_ACTION_RE.match(self.path)
            if three_ds is not None:
                self._3ds_action(*three_ds.groups())
                return
            match = _ACTION_RE.match(self.path)
            if match is None:
                self._send(HTTPStatus.NOT_FOUND, "<h1>Not found</h1>")
                return
            checkout_id, action = match.groups()
            try:
                if action == "pay":
                    fake.complete_checkout(checkout_id)
                elif action == "decline":
                    fake.decline_checkout(checkout_id)  # the checkout stays open, its payment PENDING
                else:
                    fake.abandon_checkout(checkout_id)
            except GatewayError as exc:
                self._send(HTTPStatus.CONFLICT, f"<h1>{html.escape(exc.message)}</h1>")
                return
            # back to the same page, which still takes a payment after a declined card, and says so
            self._redirect(f"/c/{checkout_id}?{_DECLINED}" if action == "decline" else f"/c/{checkout_id}")

    return Handler


def main() -> None:
    """``python -m gateway_core.fake.server``: explain, rather than serve an empty fake.

    The fake keeps its checkouts in the memory of the process that made them, so a server in a
    process of its own would know none of them.
    """
    import sys  # noqa: PLC0415

    print(
        "gateway_core.fake.server is not a program: the fake keeps its checkouts in the process that "
        "made them, so serve them from there with FakeCheckoutServer(fake).start() (docs/host-guide.md, "
        "'The fake outside pytest'), or try it with: gateway demo --interactive",
        file=sys.stderr,
    )
    sys.exit(2)


if __name__ == "__main__":
    main()
