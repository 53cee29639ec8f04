"""Rails production logs for the sandbox, in the two shapes real shops have, with an incident in them.

``web-1/production.log`` is Rails 7's default logger with ``config.log_tags = [:request_id,
->(req) { "user:#{...}" }]``; ``web-2/production.log`` is lograge's JSON, one line per request.
The traffic is a careless app's: params carry emails, phones, addresses, card numbers, some raw
passwords and API tokens. Inside the incident window ``POST /checkout`` fails for a few customers
(``NoMethodError`` in ``Payment#capture!``, plus a few errors of another group) and ``GET /orders``
is slow for one big customer. The same seed gives the same bytes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

MIN_REQUESTS = 200
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
class _Error:
    cls: str
    message: str
    backtrace: tuple[str, ...]


NIL_PAYMENT = _Error(
    "NoMethodError",
    "undefined method `amount_cents' for nil:NilClass",
    (
        "app/models/payment.rb:42:in `capture!'",
        "app/services/checkout_service.rb:27:in `call'",
        "app/controllers/checkout_controller.rb:18:in `create'",
    ),
)
_OTHER_GROUP = (
    _Error(
        "ActiveRecord::RecordNotUnique",
        'PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint "payments_pkey"',
        (
            "app/models/payment.rb:17:in `authorize!'",
            "app/services/checkout_service.rb:22:in `call'",
            "app/controllers/checkout_controller.rb:18:in `create'",
        ),
    ),
    _Error(
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
class _Endpoint:
    method: str
    route: str
    controller: str
    action: str
    format: str
    weight: float
    login: bool  # a signed-in user is required
    median_ms: float


_ENDPOINTS = (
    _Endpoint("GET", "/products", "ProductsController", "index", "html", 0.32, False, 45),
    _Endpoint("GET", "/orders", "OrdersController", "index", "html", 0.15, True, 60),
    _Endpoint("GET", "/orders/:id", "OrdersController", "show", "html", 0.14, True, 35),
    _Endpoint("POST", "/checkout", "CheckoutController", "create", "json", 0.12, True, 180),
    _Endpoint("POST", "/login", "SessionsController", "create", "html", 0.12, False, 90),
    _Endpoint("GET", "/account", "AccountsController", "show", "html", 0.15, True, 40),
)
_BY_ACTION = {f"{e.controller}#{e.action}": e for e in _ENDPOINTS}
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    302: "Found",
    401: "Unauthorized",
    404: "Not Found",
    500: "Internal Server Error",
}


@dataclass
class _Request:
    at: datetime
    host: int
    pid: int
    endpoint: _Endpoint
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
    error: _Error | None = None
    redirect: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ended(self) -> datetime:
        return self.at + timedelta(milliseconds=self.duration_ms)


def write_logs(
    directory: Path,
    users_sample: list[LogUser],
    incident: IncidentSpec,
    requests: int = 3000,
    seed: int = 7,
) -> list[Path]:
    """Write ``web-1/production.log`` (classic) and ``web-2/production.log`` (lograge JSON).

    ``requests`` counts every request of both hosts; the incident's customers (and the slow
    customer) must be in ``users_sample``. Returns the two paths.
    """
    if requests < MIN_REQUESTS:
        raise ValueError(f"requests must be at least {MIN_REQUESTS}, got {requests}")
    by_id = {u.id: u for u in users_sample}
    missing = [i for i in (*incident.failing_user_ids, incident.slow_user_id) if i not in by_id]
    if missing:
        raise ValueError(f"users_sample lacks the incident's users {missing}")
    if (
        not incident.traffic_start
        <= incident.started_at
        < incident.ended_at
        <= incident.traffic_end
    ):
        raise ValueError("the incident window must lie inside the traffic span")
    gen = _Generator(np.random.default_rng(seed), users_sample, incident)
    reqs = gen.incident_requests()
    reqs += gen.background(requests - len(reqs))
    paths = []
    for host, render in zip(HOSTS, (_classic_lines, _lograge_lines), strict=True):
        path = Path(directory) / host / "production.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = render([r for r in reqs if r.host == HOSTS.index(host)])
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        paths.append(path)
    return paths


class _Generator:
    """Draws requests from one numpy generator, so that a seed fixes every byte."""

    def __init__(self, rng: np.random.Generator, users: list[LogUser], spec: IncidentSpec):
        self.rng = rng
        self.spec = spec
        failing = set(spec.failing_user_ids)
        self.users = users
        self.bystanders = [u for u in users if u.id not in failing and u.id != spec.slow_user_id]
        self.by_id = {u.id: u for u in users}

    def incident_requests(self) -> list[_Request]:
        """The failing checkouts, the other group's errors and the slow customer's order lists."""
        spec, rng = self.spec, self.rng
        out: list[_Request] = []
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

    def background(self, n: int) -> list[_Request]:
        """Ordinary traffic over the whole span; the failing customers fail here too in the window."""
        spec, rng = self.spec, self.rng
        span = (spec.traffic_end - spec.traffic_start).total_seconds() - 60
        offsets = np.sort(rng.random(n) * span)
        weights = np.array([e.weight for e in _ENDPOINTS])
        kinds = rng.choice(len(_ENDPOINTS), n, p=weights / weights.sum())
        out = []
        for offset, kind in zip(offsets, kinds, strict=True):
            endpoint = _ENDPOINTS[kind]
            anonymous = not endpoint.login and rng.random() < 0.45
            user = None if anonymous else self.pick(self.users)
            at = spec.traffic_start + timedelta(seconds=float(offset))
            out.append(self.request(at, endpoint, user))
        return out

    def request(self, at: datetime, endpoint: _Endpoint, user: LogUser | None) -> _Request:
        rng = self.rng
        host = int(rng.integers(0, 2))
        duration = float(rng.lognormal(np.log(endpoint.median_ms), 0.45))
        req = _Request(
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

    def fill(self, req: _Request, user: LogUser | None) -> None:
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

    def fail(self, req: _Request, error: _Error, status: int = 500) -> None:
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


def _not_found(order_id: int) -> _Error:
    return _Error(
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


def _classic_lines(reqs: list[_Request]) -> list[str]:
    """Rails 7 logger lines with ``[request_id] [user:ID]`` tags, interleaved by time."""
    events: list[tuple[datetime, int, int, str]] = []
    for n, r in enumerate(reqs):
        tags = f"[{r.request_id}] [user:{r.user.id if r.user else '-'}]"
        for k, (at, severity, text) in enumerate(_classic_events(r)):
            stamp = f"{at:%Y-%m-%dT%H:%M:%S.%f} #{r.pid}"
            events.append((at, n, k, f"{severity[0]}, [{stamp}] {severity:>5} -- : {tags} {text}"))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return [e[3] for e in events]


def _classic_events(r: _Request) -> list[tuple[datetime, str, str]]:
    """What Rails logs for one request: (time, severity, message)."""
    ep, end = r.endpoint, r.ended
    step = timedelta(microseconds=300)
    events = [
        (
            r.at,
            "INFO",
            f'Started {ep.method} "{r.path}" for {r.ip} at {r.at:%Y-%m-%d %H:%M:%S} +0000',
        ),
        (r.at + step, "INFO", f"Processing by {ep.controller}#{ep.action} as {ep.format.upper()}"),
    ]
    if r.params:
        events.append((r.at + step, "INFO", f"  Parameters: {ruby_inspect(r.params)}"))
    if r.redirect:
        events.append((end - step, "INFO", f"Redirected to {r.redirect}"))
    views = f"Views: {r.view_ms:.1f}ms | " if r.view_ms is not None else ""
    events.append(
        (
            end,
            "INFO",
            f"Completed {r.status} {_STATUS_TEXT[r.status]} in {round(r.duration_ms)}ms "
            f"({views}ActiveRecord: {r.db_ms:.1f}ms | Allocations: {r.allocations})",
        )
    )
    if r.error:
        lines = ["  ", f"{r.error.cls} ({r.error.message}):", "  ", *r.error.backtrace]
        events.extend((end, "FATAL", line) for line in lines)
    return events


def _lograge_lines(reqs: list[_Request]) -> list[str]:
    """lograge JSON, one line per request, in order of completion."""
    lines = []
    for r in sorted(reqs, key=lambda r: r.ended):
        ep = r.endpoint
        entry: dict[str, object] = {
            "time": r.ended.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "method": ep.method,
            "path": r.path,
            "format": ep.format,
            "controller": ep.controller,
            "action": ep.action,
            "status": r.status,
            "duration": round(r.duration_ms, 2),
            "view": round(r.view_ms or 0.0, 2),
            "db": round(r.db_ms, 2),
            "request_id": r.request_id,
            "user_id": r.user.id if r.user else None,
            "remote_ip": r.ip,
            "params": r.params,
        }
        if r.redirect:
            entry["location"] = r.redirect
        if r.error:
            entry["exception"] = [r.error.cls, r.error.message]
            entry["exception_backtrace"] = list(r.error.backtrace)
        lines.append(json.dumps(entry, ensure_ascii=False))
    return lines


def ruby_inspect(value: object) -> str:
    """``value`` as Ruby's ``Hash#inspect`` prints it in a Rails 7 log (``{"a"=>"b"}``)."""
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'
