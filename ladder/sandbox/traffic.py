"""The sandbox shop's web traffic as values: who requested what, when, and what went wrong.

The traffic is a careless app's: params carry emails, phones, addresses, card numbers, some raw
passwords and API tokens. Inside the incident window ``POST /checkout`` fails for a few customers
(``NoMethodError`` in ``Payment#capture!``, plus a few errors of another group) and ``GET /orders``
is slow for one big customer. One numpy generator draws everything, so a seed fixes every
request. :mod:`ladder.sandbox.railslogs` writes them as Rails log files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

HOSTS = ("web-1", "web-2")
_PIDS = ((4121, 4127), (3987, 3990))


@dataclass(frozen=True)
class LogUser:
    """A customer as the logs show them."""

    id: int
    email: str
    first_name: str
    last_name: str
    phone: str | None = None
    ip: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class IncidentSpec:
    """When traffic runs, when the incident happens and whom it hits (all times UTC)."""

    traffic_start: datetime
    traffic_end: datetime
    started_at: datetime
    ended_at: datetime
    failing_user_ids: tuple[int, ...]
    slow_user_id: int

    @classmethod
    def ending_at(
        cls,
        end: datetime,
        failing_user_ids: list[int] | tuple[int, ...],
        slow_user_id: int,
        *,
        hours: float = 2,
        window_minutes: int = 15,
    ) -> IncidentSpec:
        """Traffic for ``hours`` up to ``end``; the incident starts 50 minutes before ``end``."""
        end = end.astimezone(UTC).replace(microsecond=0)
        started = end - timedelta(minutes=50)
        return cls(
            traffic_start=end - timedelta(hours=hours),
            traffic_end=end,
            started_at=started,
            ended_at=started + timedelta(minutes=window_minutes),
            failing_user_ids=tuple(failing_user_ids),
            slow_user_id=slow_user_id,
        )


@dataclass(frozen=True)
class AppError:
    cls: str
    message: str
    backtrace: tuple[str, ...]


NIL_PAYMENT = AppError(
    "NoMethodError",
    "undefined method `amount_cents' for nil:NilClass",
    (
        "app/models/payment.rb:42:in `capture!'",
        "app/services/checkout_service.rb:27:in `call'",
        "app/controllers/checkout_controller.rb:18:in `create'",
    ),
)
_OTHER_GROUP = (
    AppError(
        "ActiveRecord::RecordNotUnique",
        'PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint "payments_pkey"',
        (
            "app/models/payment.rb:17:in `authorize!'",
            "app/services/checkout_service.rb:22:in `call'",
            "app/controllers/checkout_controller.rb:18:in `create'",
        ),
    ),
    AppError(
        "ActiveRecord::QueryCanceled",
        "PG::QueryCanceled: ERROR:  canceling statement due to statement timeout",
        (
            "app/models/order.rb:88:in `recalculate_totals!'",
            "app/services/checkout_service.rb:31:in `call'",
            "app/controllers/checkout_controller.rb:18:in `create'",
        ),
    ),
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str
    controller: str
    action: str
    format: str
    weight: float
    login: bool  # a signed-in user is required
    median_ms: float


ENDPOINTS = (
    Endpoint("GET", "/products", "ProductsController", "index", "html", 0.32, False, 45),
    Endpoint("GET", "/orders", "OrdersController", "index", "html", 0.15, True, 60),
    Endpoint("GET", "/orders/:id", "OrdersController", "show", "html", 0.14, True, 35),
    Endpoint("POST", "/checkout", "CheckoutController", "create", "json", 0.12, True, 180),
    Endpoint("POST", "/login", "SessionsController", "create", "html", 0.12, False, 90),
    Endpoint("GET", "/account", "AccountsController", "show", "html", 0.15, True, 40),
)
_BY_ACTION = {f"{e.controller}#{e.action}": e for e in ENDPOINTS}
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    302: "Found",
    401: "Unauthorized",
    404: "Not Found",
    500: "Internal Server Error",
}


@dataclass
class Request:
    at: datetime
    host: int
    pid: int
    endpoint: Endpoint
    path: str
    user: LogUser | None
    ip: str
    request_id: str
    params: dict[str, object]
    status: int
    duration_ms: float
    db_ms: float
    view_ms: float | None
    allocations: int
    error: AppError | None = None
    redirect: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ended(self) -> datetime:
        return self.at + timedelta(milliseconds=self.duration_ms)


class _Generator:
    """Draws requests from one numpy generator, so that a seed fixes every byte."""

    def __init__(self, rng: np.random.Generator, users: list[LogUser], spec: IncidentSpec):
        self.rng = rng
        self.spec = spec
        failing = set(spec.failing_user_ids)
        self.users = users
        self.bystanders = [u for u in users if u.id not in failing and u.id != spec.slow_user_id]
        self.by_id = {u.id: u for u in users}

    def incident_requests(self) -> list[Request]:
        """The failing checkouts, the other group's errors and the slow customer's order lists."""
        spec, rng = self.spec, self.rng
        out: list[Request] = []
        for uid in spec.failing_user_ids:
            for _ in range(int(rng.integers(3, 7))):
                out.append(
                    self.request(
                        self.in_window(), _BY_ACTION["CheckoutController#create"], self.by_id[uid]
                    )
                )
        for _ in range(int(rng.integers(2, 5))):
            user = self.pick(self.bystanders)
            req = self.request(self.in_window(), _BY_ACTION["CheckoutController#create"], user)
            self.fail(req, _OTHER_GROUP[int(rng.integers(0, len(_OTHER_GROUP)))])
            out.append(req)
        slow = self.by_id[spec.slow_user_id]
        for _ in range(14):
            req = self.request(self.in_window(), _BY_ACTION["OrdersController#index"], slow)
            req.duration_ms = float(rng.lognormal(np.log(4200), 0.35))
            req.db_ms = req.duration_ms * 0.93
            out.append(req)
        for i, req in enumerate(out):  # spread the incident over both hosts
            req.host = i % 2
            req.pid = _PIDS[req.host][i % 2]
        return out

    def background(self, n: int) -> list[Request]:
        """Ordinary traffic over the whole span; the failing customers fail here too in the window."""
        spec, rng = self.spec, self.rng
        span = (spec.traffic_end - spec.traffic_start).total_seconds() - 60
        offsets = np.sort(rng.random(n) * span)
        weights = np.array([e.weight for e in ENDPOINTS])
        kinds = rng.choice(len(ENDPOINTS), n, p=weights / weights.sum())
        out = []
        for offset, kind in zip(offsets, kinds, strict=True):
            endpoint = ENDPOINTS[kind]
            anonymous = not endpoint.login and rng.random() < 0.45
            user = None if anonymous else self.pick(self.users)
            at = spec.traffic_start + timedelta(seconds=float(offset))
            out.append(self.request(at, endpoint, user))
        return out

    def request(self, at: datetime, endpoint: Endpoint, user: LogUser | None) -> Request:
        rng = self.rng
        host = int(rng.integers(0, 2))
        duration = float(rng.lognormal(np.log(endpoint.median_ms), 0.45))
        req = Request(
            at=at,
            host=host,
            pid=_PIDS[host][int(rng.integers(0, 2))],
            endpoint=endpoint,
            path=endpoint.route,
            user=None
            if endpoint.action == "create" and endpoint.controller == "SessionsController"
            else user,
            ip=(user.ip if user and user.ip else None) or self.ip(),
            request_id=str(uuid.UUID(bytes=rng.bytes(16), version=4)),
            params={},
            status=201 if endpoint.action == "create" else 200,
            duration_ms=duration,
            db_ms=duration * float(rng.uniform(0.1, 0.5)),
            view_ms=duration * float(rng.uniform(0.2, 0.5)),
            allocations=int(duration * rng.uniform(80, 160)),
        )
        self.fill(req, user)
        return req

    def fill(self, req: Request, user: LogUser | None) -> None:
        """Params, status and errors per endpoint."""
        rng, ep = self.rng, req.endpoint
        if ep.route == "/products":
            roll = rng.random()
            if roll < 0.3:
                req.params = {"page": str(int(rng.integers(2, 20)))}
            elif roll < 0.5:
                req.params = {
                    "q": ["mug", "blue hoodie", "lamp", "gift card"][int(rng.integers(0, 4))]
                }
        elif ep.route == "/orders":
            if rng.random() < 0.2:
                req.params = {"page": str(int(rng.integers(2, 6)))}
        elif ep.route == "/orders/:id":
            order_id = int(rng.integers(1, 50_000))
            req.path = f"/orders/{order_id}"
            req.params = {"id": str(order_id)}
            if rng.random() < 0.03:
                self.fail(req, _not_found(order_id), status=404)
        elif ep.route == "/checkout":
            assert user is not None
            req.params = self.checkout_params(user)
            if (
                user.id in self.spec.failing_user_ids
                and self.spec.started_at <= req.at < self.spec.ended_at
            ):
                self.fail(req, NIL_PAYMENT)
        elif ep.route == "/login":
            who = user or self.pick(self.users)
            password = "[FILTERED]" if rng.random() < 0.85 else self.password()
            req.params = {
                "authenticity_token": "[FILTERED]",
                "session": {"email": who.email, "password": password},
                "remember_me": "1",
            }
            if rng.random() < 0.12:
                req.status, req.view_ms = 401, None
            else:
                req.status, req.view_ms = 302, None
                req.redirect = "https://shop.example.com/account"
        elif ep.route == "/account" and rng.random() < 0.3:
            req.params = {"api_token": "tok_live_" + rng.bytes(12).hex()}

    def checkout_params(self, user: LogUser) -> dict[str, object]:
        rng = self.rng
        order: dict[str, object] = {"email": user.email}
        if user.phone:
            order["phone"] = user.phone
        if user.address:
            order["shipping_address"] = user.address
        order["card_number"] = self.card_number()
        order["card_expiry"] = f"{int(rng.integers(1, 13)):02d}/{int(rng.integers(27, 32))}"
        order["cvc"] = "[FILTERED]"
        params: dict[str, object] = {"order": order, "user_id": str(user.id)}
        if rng.random() < 0.25:
            params["api_token"] = "tok_live_" + rng.bytes(12).hex()
        return params

    def fail(self, req: Request, error: AppError, status: int = 500) -> None:
        req.status, req.error, req.view_ms = status, error, None
        if error.cls == "ActiveRecord::QueryCanceled":
            req.duration_ms = float(self.rng.uniform(5000, 5100))
            req.db_ms = req.duration_ms - 3

    def in_window(self) -> datetime:
        seconds = (self.spec.ended_at - self.spec.started_at).total_seconds() - 30
        return self.spec.started_at + timedelta(seconds=float(self.rng.random() * seconds))

    def pick(self, users: list[LogUser]) -> LogUser:
        return users[int(self.rng.integers(0, len(users)))]

    def ip(self) -> str:
        a, b, c, d = (int(x) for x in self.rng.integers(1, 255, 4))
        return f"{a}.{b}.{c}.{d}"

    def password(self) -> str:
        words = ["sunshine", "dragon", "Summer", "letmein", "Monkey", "shadow", "Winter"]
        return f"{words[int(self.rng.integers(0, len(words)))]}{int(self.rng.integers(1, 2000))}!"

    def card_number(self) -> str:
        if self.rng.random() < 0.3:
            return "4242 4242 4242 4242"
        digits = [4, *(int(d) for d in self.rng.integers(0, 10, 14))]
        digits.append(_luhn_check_digit(digits))
        text = "".join(map(str, digits))
        return " ".join(text[i : i + 4] for i in range(0, 16, 4))


def _not_found(order_id: int) -> AppError:
    return AppError(
        "ActiveRecord::RecordNotFound",
        f'Couldn\'t find Order with \'id\'={order_id} [WHERE "orders"."user_id" = $1]',
        ("app/controllers/orders_controller.rb:14:in `show'",),
    )


def _luhn_check_digit(digits: list[int]) -> int:
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return (10 - total % 10) % 10


def draw_requests(
    users_sample: list[LogUser], incident: IncidentSpec, requests: int, seed: int
) -> list[Request]:
    """The incident's requests, then background traffic up to ``requests`` in all."""
    gen = _Generator(np.random.default_rng(seed), users_sample, incident)
    reqs = gen.incident_requests()
    return reqs + gen.background(requests - len(reqs))
