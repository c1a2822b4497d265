"""The exception tree of paid_events. Every error is refused before anything changes::

    PaidEventsError
    ├── InvalidInput (ValueError)       the caller's input is malformed; nothing was written
    │   ├── InvalidEmail                not a plausible e-mail address
    │   ├── InvalidPromoCode            overlong, empty, or not [A-Z0-9_-] after NFKC (unicode tricks),
    │   │                               or an expiry already past
    │   ├── InvalidPrice                below 1, above the currency's limit, fractional minor unit, no
    │   │                               enabled gateway offering the currency or taking the list price as it is,
    │   │                               or taking a discount without raising it above the list price
    │   └── InvalidDate                 a date in the past, a one-off event without one, a date (or a
    │                                   session) for an event kind that has none
    ├── NotFoundError (LookupError)
    │   ├── UnknownEvent
    │   ├── UnknownRegistration
    │   ├── UnknownPromoCode
    │   ├── UnknownSession              not a session of that (permanent) event
    │   └── UnknownPayment             a (verified) webhook or status for a payment we never started
    ├── Refused                         the request is well formed but the state forbids it
    │   ├── SoldOut                     every seat is held or sold
    │   ├── PromoCodeExhausted          the code's uses are all redeemed
    │   ├── PromoCodeExpired
    │   ├── PromoNotAllowed             promo codes are for one-off events only
    │   ├── EventClosed                 the event is cancelled
    │   ├── RegistrationClosed          the one-off event started (past its late-join window)
    │   ├── PriceLocked                 a payment is confirmed: the price cannot change
    │   ├── AlreadyRegistered           this e-mail holds or has a ticket for the event
    │   ├── PriceChanged                the price differs from the one the participant accepted
    │   └── InvalidTransition           e.g. refunding a free ticket, rejecting a refunded one
    └── CheckoutPending                 the provider's answer was lost; reconciliation will finish it

Messages carry ids and amounts, never access tokens, secrets or e-mail addresses.
"""

from __future__ import annotations

__all__ = [
    "AlreadyRegistered",
    "CheckoutPending",
    "EventClosed",
    "InvalidDate",
    "InvalidEmail",
    "InvalidInput",
    "InvalidPrice",
    "InvalidPromoCode",
    "InvalidTransition",
    "NotFoundError",
    "PaidEventsError",
    "PriceChanged",
    "PriceLocked",
    "PromoCodeExhausted",
    "PromoCodeExpired",
    "PromoNotAllowed",
    "Refused",
    "RegistrationClosed",
    "SoldOut",
    "UnknownEvent",
    "UnknownPayment",
    "UnknownPromoCode",
    "UnknownRegistration",
    "UnknownSession",
]


class PaidEventsError(Exception):
    """Base of every paid_events error."""


class InvalidInput(PaidEventsError, ValueError):
    pass


class InvalidEmail(InvalidInput):
    pass


class InvalidPromoCode(InvalidInput):
    pass


class InvalidPrice(InvalidInput):
    pass


class InvalidDate(InvalidInput):
    pass


class NotFoundError(PaidEventsError, LookupError):
    pass


class UnknownEvent(NotFoundError):
    pass


class UnknownRegistration(NotFoundError):
    pass


class UnknownPromoCode(NotFoundError):
    pass


class UnknownPayment(NotFoundError):
    pass


class UnknownSession(NotFoundError):
    pass


class Refused(PaidEventsError):
    pass


class SoldOut(Refused):
    pass


class PromoCodeExhausted(Refused):
    pass


class PromoCodeExpired(Refused):
    pass


class PromoNotAllowed(Refused):
    pass


class EventClosed(Refused):
    pass


class RegistrationClosed(Refused):
    pass


class PriceLocked(Refused):
    pass


class AlreadyRegistered(Refused):
    pass


class PriceChanged(Refused):
    pass


class InvalidTransition(Refused):
    pass


class CheckoutPending(PaidEventsError):
    """The provider may have created the checkout but its answer was lost; retry or reconcile."""

    retryable = True
