"""``gateway events demo``: the paid-events story end to end on the fake gateway and SQLite.

An organizer creates a paid event with promo codes; participants register with and without
codes (one rounded up to a gateway minimum, one free), pay through hosted checkouts confirmed by
verified webhooks; the organizer rejects one who paid, one who had not and one who pays at that
very moment (told her payment will be refunded), changes the date,
runs a permanent series with sessions, cancels, refunds everyone and deletes the event. Messages
go through the outbox to a mailbox file (``--outbox PATH`` keeps it). Nothing leaves the machine.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import structlog

import gateway_core.fake
from gateway_core import Feature, GatewayManager, Money
from gateway_core.fake import FakeGateway
from paid_events import config as pe_config
from paid_events import domain, outbox
from paid_events.errors import PaidEventsError
from paid_events.service import CheckoutResult, PaidEvents, WebhookOutcome
from paid_events.store import Store

__all__ = ["deliver_webhooks", "run"]


def deliver_webhooks(service: PaidEvents, gateway: str, *, duplicate: bool = False) -> list[WebhookOutcome]:
    """Hand every webhook the fake ``gateway`` has queued to the service, as its endpoint would.

    Webhooks the handling itself causes come too: on a gateway where the platform captures an
    approved checkout (``host_completes_checkout``, as PayPal) the capture's ``payment.succeeded``.
    """
    fake = service.gateways.gateway_object(gateway)
    if not isinstance(fake, FakeGateway):
        raise TypeError(f"gateway {gateway!r} is not the fake gateway")
    outcomes: list[WebhookOutcome] = []
    for _ in range(3):  # a webhook's handling queues at most one round more (the capture's)
        deliveries = fake.drain_webhooks(duplicate=duplicate)
        if not deliveries:
            break
        outcomes += [service.handle_webhook(gateway, d.headers, d.body) for d in deliveries]
    return outcomes


@attrs.define
class _Mailbox:
    """Writes each message to a file and remembers the tokens, so the demo can show them admitting."""

    path: Path
    tokens: dict[str, str] = attrs.field(factory=dict)

    def send(self, message: outbox.Message) -> None:
        outbox.FileSender(self.path).send(message)
        found = re.search(r"access token: (\S+)", message.body)
        if found:
            self.tokens[message.recipient] = found.group(1)


def run(
    *,
    database: str | None = None,
    config_path: Path | None = None,
    outbox_path: Path | None = None,
    echo: Callable[[str], object] = print,
    verbose: bool = False,
) -> None:
    """Run the story; ``database`` defaults to a SQLite file in a temporary directory.

    Messages are appended to ``outbox_path`` (kept), else to a file in the temporary directory.

    The demo is an application, so it may set the log level: below warnings, log lines are
    hidden unless ``verbose`` (the previous structlog configuration is restored afterwards).
    """
    saved = structlog.get_config()
    if not verbose:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        with tempfile.TemporaryDirectory(prefix="paid-events-demo-") as tmp:
            url = database or f"sqlite:///{Path(tmp) / 'events.db'}"
            mailbox = outbox_path or Path(tmp) / "mailbox.txt"
            _story(url, mailbox, config_path, echo)
            if outbox_path is None:
                echo("   (the messages went to a temporary mailbox; run with --outbox PATH to keep and read it)")
            else:
                echo(f"   the participants' messages are in {outbox_path}")
    finally:
        structlog.configure(**saved)


def _story(url: str, mailbox_path: Path, config_path: Path | None, echo: Callable[[str], object]) -> None:  # noqa: PLR0915 (a script)
    step = _Steps(echo)
    platform, deployment = pe_config.load(config_path)
    manager = GatewayManager(deployment, plugins=[gateway_core.fake], load_entry_points=False)
    store = Store.open(url)
    service = PaidEvents(store, manager, platform)
    mailbox = _Mailbox(mailbox_path)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        step(f"Store: {store.dialect} ({'temporary file' if url.startswith('sqlite') else 'as given'}), migrated")
        echo(f"   gateways: {', '.join(manager.gateway_names())} (fake providers; no money moves)")
        echo(f"   service fee: {platform.fee_percent} % rounded {platform.fee_rounding.name}")
        echo(f"   messages go to the mailbox file {mailbox_path}")

        step("The organizer creates a paid one-off webinar (50-seat plan)")
        event = service.create_event(
            organizer="acme-academy",
            title="Pricing for SaaS founders",
            kind="one_off",
            price=Money.of("20.00", "EUR"),
            capacity=50,
            gateways=["stripe-like", "paypal-like"],
            starts_at=now + timedelta(days=14),
        )
        echo(f"   event {_short(event.id)}: {event.title}, {event.price}, {event.capacity} seats")
        for code, kwargs in (
            ("EARLY10", {"percent": "10", "max_uses": 100}),
            ("FRIEND98", {"percent": "98"}),
            ("SPEAKER", {"percent": "100", "max_uses": 3}),
        ):
            service.add_promo_code(event.id, code, **kwargs)
            echo(f"   promo code {code}: {kwargs}")
        for bad in ("99.999", "2500", "-5"):
            try:
                service.change_price(event.id, domain.parse_price(bad, "EUR"))
            except PaidEventsError as exc:
                echo(f"   refused price {bad} EUR: {type(exc).__name__}: {exc}")
        try:  # only a discount is rounded up to a gateway's minimum; a list price must be one it takes
            service.create_event(
                organizer="acme-academy",
                title="A 100 forint taster",
                kind="on_demand",
                price=Money.of("100", "HUF"),
                capacity=50,
                gateways=["stripe-like"],
            )
        except PaidEventsError as exc:
            echo(f"   refused a 100 HUF event: {type(exc).__name__}: {exc}")
        for label, call in (
            ("a date in the past", lambda: service.change_date(event.id, now - timedelta(days=1))),
            (
                "a promo code already expired",
                lambda: service.add_promo_code(event.id, "OLD", percent="5", expires_at=now),
            ),
        ):
            try:
                call()
            except PaidEventsError as exc:
                echo(f"   refused {label}: {type(exc).__name__}")

        step("Participants register, see their final price, and pay")
        ann = _register(service, echo, event.id, "ann@example.com")
        bob = _register(service, echo, event.id, "bob@example.com", code="early10", gateway="paypal-like")
        cat = _register(service, echo, event.id, "cat@example.com", code="FRIEND98")
        dan = _register(service, echo, event.id, "dan@example.com", code="SPEAKER")
        eve = _register(service, echo, event.id, "eve@example.com")
        fay = _register(service, echo, event.id, "fay@example.com")
        ivy = _register(service, echo, event.id, "ivy@example.com")
        again = service.checkout(event.id, "Ann@Example.com")
        echo(
            f"   Ann@Example.com comes back before paying: same registration {again.registration_id == ann.registration_id}, "
            f"same checkout {again.checkout_id == ann.checkout_id} (no second seat)"
        )
        for label, args in (
            ("malformed e-mail", ("not-an-email", None)),
            ("look-alike promo code", ("gus@example.com", "SPE\u0410KER")),
            ("overlong promo code", ("gus@example.com", "X" * 40)),
        ):
            try:
                service.checkout(event.id, args[0], args[1])
            except PaidEventsError as exc:
                echo(f"   refused {label}: {type(exc).__name__}: {exc}")

        for result in (ann, bob, cat):
            assert result.checkout_id is not None
            gateway = result.quote.gateway or ""
            _fake(manager, gateway).complete_checkout(result.checkout_id)
        assert eve.checkout_id is not None
        _fake(manager, "stripe-like").abandon_checkout(eve.checkout_id)
        echo("   ann, bob and cat pay on the hosted pages; eve walks away; fay and ivy have not paid yet")
        echo(f"   seats taken before any webhook: {service.event(event.id).seats_taken} (held, not yet paid)")
        for gateway in ("stripe-like", "paypal-like"):
            outcomes = deliver_webhooks(service, gateway, duplicate=True)
            echo(
                f"   {gateway} webhooks (each delivered twice): "
                f"{outcomes.count(WebhookOutcome.PROCESSED)} processed, "
                f"{outcomes.count(WebhookOutcome.DUPLICATE)} duplicates ignored, "
                f"{outcomes.count(WebhookOutcome.IGNORED)} informational"
            )
        echo(f"   seats taken now: {service.event(event.id).seats_taken} (eve's seat came back)")
        _participants(service, echo, event.id)
        report = service.fee_report(event.id)
        for line in report.lines:
            echo(f"   fee on {_short(line.registration_id)}: {line.fee} of {line.amount}")
        echo(
            f"   total sales {report.total_sales}, service fee collected {report.total_fee} "
            f"(the sum of the per-payment fees; {platform.fee_percent} % of the total would be {report.fee_on_total})"
        )

        step("Confirmation messages go out through the outbox")
        echo(f"   sent {outbox.drain(store, mailbox)} messages to {mailbox_path.name}")
        token = mailbox.tokens["ann@example.com"]
        echo(f"   ann's access token admits her: {service.admit(event.id, token)} (the token is never printed)")

        step("The organizer rejects bob, who paid, fay, who had not, and ivy, who pays at that very moment")
        service.reject(bob.registration_id, "registered twice")
        service.reject(fay.registration_id, "not a member")
        assert ivy.checkout_id is not None
        ivy_gateway = ivy.quote.gateway or ""
        _fake(manager, ivy_gateway).complete_checkout(ivy.checkout_id)  # she pays at that very moment
        service.reject(ivy.registration_id, "not a member")  # too late to close her checkout
        deliver_webhooks(service, ivy_gateway)
        echo(f"   bob: {_status(service, event.id, bob.registration_id)}, paid: {_paid(service, event.id, bob)}")
        echo(
            f"   fay: {_status(service, event.id, fay.registration_id)}, paid: {_paid(service, event.id, fay)} (nothing to refund)"
        )
        echo(
            f"   ivy paid as she was rejected: {_status(service, event.id, ivy.registration_id)}, "
            f"paid: {_paid(service, event.id, ivy)} (she is told the organizer refunds it)"
        )
        echo("   no refund is automatic: the list shows what the organizer owes back")
        _participants(service, echo, event.id)

        step("The organizer moves the date; everyone is told")
        new_date = now + timedelta(days=21)
        echo(f"   notified {service.change_date(event.id, new_date)} participants of {new_date.date()}")

        step("A permanent series: one ticket admits to every session")
        series = service.create_event(
            organizer="acme-academy",
            title="Founders' office hours",
            kind="permanent",
            price=Money.of("45.00", "EUR"),
            capacity=50,
            gateways=["stripe-like"],
            sessions=[now + timedelta(days=7)],
        )
        hal = service.checkout(series.id, "hal@example.com")
        assert hal.checkout_id is not None
        _fake(manager, "stripe-like").complete_checkout(hal.checkout_id)
        deliver_webhooks(service, "stripe-like")
        second = service.add_session(series.id, now + timedelta(days=14))
        first = service.sessions(series.id)[0]
        echo(
            f"   sent {outbox.drain(store, mailbox)} messages (rejections, ivy's refund notice, date changes, "
            "hal's ticket, the new session)"
        )
        hal_token = mailbox.tokens["hal@example.com"]
        echo(f"   sessions: {', '.join(str(s.starts_at.date()) for s in service.sessions(series.id))}")
        echo(
            f"   hal's token admits to the first session: {service.admit(series.id, hal_token, session_id=first.id)}, "
            f"to the session added later: {service.admit(series.id, hal_token, session_id=second.id)}"
        )
        moved = service.change_date(series.id, now + timedelta(days=15), session_id=second.id)
        echo(f"   the second session moves a day; notified {moved} participant")

        step("The organizer cancels the webinar; everyone is told")
        echo(f"   notified {service.cancel_event(event.id)} participants")

        step("The organizer refunds every payment through the gateway that took it")

        def progress(done: int, total: int, outcome: object) -> None:
            state = getattr(outcome, "state", "?")
            amount = getattr(outcome, "amount", "?")
            rid = getattr(outcome, "registration_id", "?")
            echo(f"   [{done}/{total}] {_short(str(rid))}: {state} {amount}")

        service.refund_all(event.id, progress)
        again_refund = service.refund(ann.registration_id)
        echo(f"   refunding ann again: {again_refund.state} (no second refund)")
        for gateway in ("stripe-like", "paypal-like"):
            deliver_webhooks(service, gateway)
            echo(f"   {gateway}: {_fake(manager, gateway).refunds_made()} refunds made")
        _participants(service, echo, event.id)
        try:
            service.delete_event(event.id)
        except PaidEventsError as exc:
            echo(f"   delete refused while messages are unsent: {type(exc).__name__}")
        echo(f"   sent {outbox.drain(store, mailbox)} more messages (the cancellations, the session's new date)")
        service.delete_event(event.id)
        echo("   every payment refunded and every message out: the organizer deletes the event")
        echo(f"   free ticket for dan needed no checkout: {dan.checkout_id is None}")

        step("Done")
    finally:
        store.close()


class _Steps:
    def __init__(self, echo: Callable[[str], object]) -> None:
        self.echo = echo
        self.n = 0

    def __call__(self, title: str) -> None:
        self.n += 1
        self.echo(f"\n{self.n}. {title}")


def _register(
    service: PaidEvents,
    echo: Callable[[str], object],
    event_id: str,
    email: str,
    *,
    code: str | None = None,
    gateway: str | None = None,
) -> CheckoutResult:
    quote = service.quote(event_id, code, gateway=gateway)
    note = f" (rounded up from {quote.discounted} to the gateway minimum)" if quote.rounded_up else ""
    promo = f" with {code}" if code else ""
    where = f"via {quote.gateway}" if quote.gateway else "free, no checkout"
    kept = ""
    if quote.gateway and Feature.APPLICATION_FEE not in service.gateways.gateway(quote.gateway).capabilities.features:
        kept = f" (not passed to {quote.gateway}, which takes no application fee)"
    echo(f"   {email}{promo}: pays {quote.final}{note}, fee {quote.fee}{kept}, {where}")
    result = service.checkout(event_id, email, code, gateway=gateway, accept_price=quote.final)
    echo(f"      -> registration {_short(result.registration_id)} {result.status}")
    return result


def _participants(service: PaidEvents, echo: Callable[[str], object], event_id: str) -> None:
    """The organizer's list: a payment the provider confirmed shows ``paid``; one owed back for no
    ticket (rejected, or paid with no seat) ``refund due``."""
    echo("   participants:")
    for p in service.participants(event_id):
        paid = "paid" if p.paid else "not paid" if p.amount.is_positive else "free"
        refund = f", refund {p.refund_state}" if p.refund_state != "none" else ""
        due = ", refund due (no ticket)" if p.refundable and p.status != "confirmed" else ""
        echo(f"     {p.email:<18} {p.status:<12} {p.amount!s:>10} via {p.gateway or '-':<11} {paid}{refund}{due}")


def _status(service: PaidEvents, event_id: str, registration_id: str) -> str:
    return next(p.status for p in service.participants(event_id) if p.registration_id == registration_id)


def _paid(service: PaidEvents, event_id: str, result: CheckoutResult) -> bool:
    return next(p.paid for p in service.participants(event_id) if p.registration_id == result.registration_id)


def _fake(manager: GatewayManager, name: str) -> FakeGateway:
    obj = manager.gateway_object(name)
    assert isinstance(obj, FakeGateway)
    return obj


def _short(identifier: str) -> str:
    return identifier[:8]
