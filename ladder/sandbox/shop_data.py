"""The rows of the sandbox shop, built column-wise: reproducible, fast, loaded by :mod:`.seed`.

Every value comes from a small pool of Faker values (built once, ``use_weighting=False``) picked
with numpy and assembled column-wise with Arrow compute. Who owns what (:class:`Ownership`) is
drawn first, so every table's chunk is built on its own; :func:`batches` yields them parents
before children. Nothing here touches a database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker

CHUNK_ROWS = 400_000
Progress = Callable[[str], None]

_ORDER_STATUSES = np.array(["pending", "paid", "shipped", "delivered", "refunded", "cancelled"])
_ORDER_STATUS_P = [0.04, 0.16, 0.2, 0.52, 0.04, 0.04]
_PLANS = ["free", "starter", "pro", "enterprise"]
_CARD_BRANDS = ["visa", "mastercard", "amex", "discover"]
_CURRENCIES = ["USD", "EUR", "GBP"]


@dataclass(frozen=True)
class Pools:
    """Faker values as Arrow arrays; ``*_json`` pools hold JSON-escaped bodies (no quotes)."""

    first: pa.Array
    last: pa.Array
    first_slug: pa.Array
    last_slug: pa.Array
    first_json: pa.Array
    last_json: pa.Array
    domains: pa.Array
    phones: pa.Array
    phones_json: pa.Array
    addresses: pa.Array
    addresses_json: pa.Array
    companies: pa.Array
    sentences: pa.Array
    skus: pa.Array
    products: pa.Array
    prices: np.ndarray

    @classmethod
    def build(cls, seed: int) -> Pools:
        fake = Faker(use_weighting=False)
        fake.seed_instance(seed)
        first = [fake.first_name() for _ in range(800)]
        last = [fake.last_name() for _ in range(800)]
        phones = [fake.phone_number() for _ in range(2000)]
        addresses = [
            f"{fake.street_address()}\n{fake.city()}, {fake.state_abbr()} {fake.postcode()}"
            for _ in range(2000)
        ]
        domains = sorted({fake.free_email_domain() for _ in range(200)} | {"example.com"})
        products = [f"{fake.color_name()} {fake.word().title()} {k}" for k in _kinds(fake, 300)]

        def slug(names: list[str]) -> pa.Array:
            return pa.array(["".join(c for c in n.lower() if c.isalnum()) or "x" for n in names])

        def body(values: list[str]) -> pa.Array:
            return pa.array([json.dumps(v)[1:-1] for v in values])

        return cls(
            first=pa.array(first),
            last=pa.array(last),
            first_slug=slug(first),
            last_slug=slug(last),
            first_json=body(first),
            last_json=body(last),
            domains=pa.array(domains),
            phones=pa.array(phones),
            phones_json=body(phones),
            addresses=pa.array(addresses),
            addresses_json=body(addresses),
            companies=pa.array([fake.company() for _ in range(1000)]),
            sentences=pa.array([fake.sentence(nb_words=10) for _ in range(500)]),
            skus=pa.array([f"SKU-{10000 + i}" for i in range(len(products))]),
            products=pa.array(products),
            prices=np.array([fake.random_int(199, 24999) for _ in products], dtype=np.int64),
        )


def _kinds(fake: Faker, n: int) -> list[str]:
    kinds = ["Mug", "Hoodie", "Backpack", "Lamp", "Notebook", "Kettle", "Chair", "Scarf", "Cap"]
    return [kinds[fake.random_int(0, len(kinds) - 1)] for _ in range(n)]


@dataclass(frozen=True)
class Ownership:
    """Who owns what: drawn first, so that every table's chunk can be built independently."""

    users: int
    accounts: int
    account_users: np.ndarray  # account id - 1 -> user id
    user_account: np.ndarray  # user id -> account id (0: none)
    order_users: np.ndarray  # order id - 1 -> user id
    slow_user_id: int
    incident_user_ids: list[int]

    @classmethod
    def draw(cls, rng: np.random.Generator, users: int) -> Ownership:
        n_accounts = max(1, users // 3)
        account_users = rng.choice(users, n_accounts, replace=False) + 1
        user_account = np.zeros(users + 1, dtype=np.int64)
        user_account[account_users] = np.arange(1, n_accounts + 1)
        n_orders = 3 * users
        order_users = rng.integers(1, users + 1, n_orders)
        slow_user = int(rng.integers(1, users + 1))
        big = min(n_orders // 3, max(300, n_orders // 100))
        order_users[rng.choice(n_orders, big, replace=False)] = slow_user
        per_user = np.bincount(order_users, minlength=users + 1)
        candidates = np.flatnonzero(per_user >= 2)
        candidates = candidates[candidates != slow_user]
        k = int(rng.integers(3, 6))
        incident = sorted(int(u) for u in rng.choice(candidates, k, replace=False))
        return cls(users, n_accounts, account_users, user_account, order_users, slow_user, incident)


Batch = tuple[str, pa.Table]


@dataclass(frozen=True)
class _People:
    """Per-customer picks, indexed by user id (index 0 unused), that later tables reuse."""

    created: np.ndarray
    first: np.ndarray
    last: np.ndarray
    address: np.ndarray
    phone: np.ndarray
    ip: pa.Array
    email: pa.Array

    @classmethod
    def draw(cls, rng: np.random.Generator, pools: Pools, n: int, now: datetime) -> _People:
        size = n + 1
        first = rng.integers(0, len(pools.first), size)
        last = rng.integers(0, len(pools.last), size)
        email = pc.binary_join_element_wise(
            pools.first_slug.take(first),
            ".",
            pools.last_slug.take(last),
            pc.cast(pa.array(np.arange(size)), pa.string()),
            "@",
            pools.domains.take(rng.integers(0, len(pools.domains), size)),
            "",
        )
        return cls(
            created=_times(rng, now - timedelta(days=3 * 365), now - timedelta(days=1), size),
            first=first,
            last=last,
            address=rng.integers(0, len(pools.addresses), size),
            phone=rng.integers(0, len(pools.phones), size),
            ip=_ips(rng, size),
            email=email,
        )


def batches(
    rng: np.random.Generator, pools: Pools, plan: Ownership, now: datetime, say: Progress
) -> Iterator[Batch]:
    """Every table's rows as Arrow tables of at most ~CHUNK_ROWS rows, parents before children."""
    people = _People.draw(rng, pools, plan.users, now)
    for lo in range(1, plan.users + 1, CHUNK_ROWS):
        ids = np.arange(lo, min(plan.users, lo + CHUNK_ROWS - 1) + 1)
        yield "users", _users(rng, pools, people, ids, now)
        say(f"users {ids[-1]:,}/{plan.users:,}")
    yield "accounts", _accounts(rng, pools, people, plan)
    say(f"accounts {plan.accounts:,}")

    n_orders = len(plan.order_users)
    items_done = payments_done = 0
    step = CHUNK_ROWS // 4
    for lo in range(0, n_orders, step):
        ids = np.arange(lo + 1, min(n_orders, lo + step) + 1)
        owners = plan.order_users[ids - 1]
        created = people.created[owners] + _span(
            rng, np.datetime64(now, "us") - people.created[owners]
        )
        status = _ORDER_STATUSES[rng.choice(len(_ORDER_STATUSES), len(ids), p=_ORDER_STATUS_P)]
        items, totals = _items(rng, pools, ids, items_done)
        items_done += items.num_rows
        orders = _orders(rng, pools, people, plan, ids, owners, created, status, totals)
        paid = status != "pending"
        payments = _payments(rng, pools, people, orders.filter(pa.array(paid)), payments_done)
        payments_done += payments.num_rows
        yield "orders", orders
        yield "order_items", items
        yield "payments", payments
        say(f"orders {ids[-1]:,}/{n_orders:,}, items {items_done:,}, payments {payments_done:,}")


def _users(
    rng: np.random.Generator, pools: Pools, people: _People, ids: np.ndarray, now: datetime
) -> pa.Table:
    m = len(ids)
    email = people.email.take(ids)
    phone = people.phone[ids]
    created = people.created[ids]
    newsletter = pa.array(np.where(rng.random(m) < 0.4, "true", "false"))
    preferences = pc.binary_join_element_wise(
        '{"shipping": {"email": "',
        email,
        '", "phone": "',
        pools.phones_json.take(phone),
        '", "address": "',
        pools.addresses_json.take(people.address[ids]),
        '"}, "newsletter": ',
        newsletter,
        "}",
        "",
    )
    alt_email = pc.binary_join_element_wise(
        pools.first_slug.take(rng.integers(0, len(pools.first), m)),
        pc.cast(pa.array(rng.integers(1, 99, m)), pa.string()),
        "@",
        pools.domains.take(rng.integers(0, len(pools.domains), m)),
        "",
    )
    notes = pc.choose(
        pa.array(rng.choice(5, m, p=[0.7, 0.12, 0.07, 0.06, 0.05]).astype(np.int8)),
        pa.nulls(m, pa.string()),
        pools.sentences.take(rng.integers(0, len(pools.sentences), m)),
        pc.binary_join_element_wise("Prefers a call at ", pools.phones.take(phone), ""),
        pc.binary_join_element_wise("Asked us to use ", alt_email, " for invoices", ""),
        pc.binary_join_element_wise(
            "Called support re: refund; reach at ",
            pools.phones.take(rng.integers(0, len(pools.phones), m)),
            " or ",
            email,
            "",
        ),
    )
    return pa.table(
        {
            "id": pa.array(ids),
            "email": email,
            "first_name": pools.first.take(people.first[ids]),
            "last_name": pools.last.take(people.last[ids]),
            "phone": pools.phones.take(phone),
            "created_at": pa.array(created),
            "updated_at": pa.array(created + _span(rng, np.datetime64(now, "us") - created)),
            "last_sign_in_ip": pc.if_else(pa.array(rng.random(m) < 0.9), people.ip.take(ids), None),
            "notes": notes,
            "preferences": preferences,
        }
    )


def _accounts(rng: np.random.Generator, pools: Pools, people: _People, plan: Ownership) -> pa.Table:
    a = plan.accounts
    return pa.table(
        {
            "id": pa.array(np.arange(1, a + 1)),
            "user_id": pa.array(plan.account_users),
            "plan": pa.array(_PLANS).take(rng.choice(4, a, p=[0.4, 0.3, 0.25, 0.05])),
            "company_name": pools.companies.take(rng.integers(0, len(pools.companies), a)),
            "billing_address": pools.addresses.take(rng.integers(0, len(pools.addresses), a)),
            "created_at": pa.array(people.created[plan.account_users] + _offsets(rng, a, days=30)),
        }
    )


def _items(
    rng: np.random.Generator, pools: Pools, order_ids: np.ndarray, done: int
) -> tuple[pa.Table, np.ndarray]:
    """1 + Poisson(1) items per order (≈ 2 on average); returns the items and each order's total."""
    per_order = 1 + rng.poisson(1.0, len(order_ids))
    local = np.repeat(np.arange(len(order_ids)), per_order)
    m = len(local)
    product = rng.integers(0, len(pools.products), m)
    quantity = 1 + np.minimum(rng.poisson(0.3, m), 9)
    price = pools.prices[product]
    totals = np.bincount(local, weights=quantity * price, minlength=len(order_ids)).astype(np.int64)
    items = pa.table(
        {
            "id": pa.array(np.arange(done + 1, done + m + 1)),
            "order_id": pa.array(order_ids[local]),
            "sku": pools.skus.take(product),
            "product_name": pools.products.take(product),
            "quantity": pa.array(quantity.astype(np.int32)),
            "unit_price_cents": pa.array(price),
        }
    )
    return items, totals


def _orders(
    rng: np.random.Generator,
    pools: Pools,
    people: _People,
    plan: Ownership,
    ids: np.ndarray,
    owners: np.ndarray,
    created: np.ndarray,
    status: np.ndarray,
    totals: np.ndarray,
) -> pa.Table:
    m = len(ids)
    account = plan.user_account[owners]
    notes = pc.choose(
        pa.array(rng.choice(3, m, p=[0.9, 0.06, 0.04]).astype(np.int8)),
        pa.nulls(m, pa.string()),
        pc.binary_join_element_wise(
            "Leave at the door, call ", pools.phones.take(people.phone[owners]), ""
        ),
        pools.sentences.take(rng.integers(0, len(pools.sentences), m)),
    )
    return pa.table(
        {
            "id": pa.array(ids),
            "user_id": pa.array(owners),
            "account_id": pa.array(account, mask=account == 0),
            "status": pa.array(status),
            "total_cents": pa.array(totals),
            "currency": pa.array(_CURRENCIES).take(rng.choice(3, m, p=[0.8, 0.12, 0.08])),
            "shipping_address": pools.addresses.take(people.address[owners]),
            "notes": notes,
            "created_at": pa.array(created),
        }
    )


def _payments(
    rng: np.random.Generator, pools: Pools, people: _People, orders: pa.Table, done: int
) -> pa.Table:
    """One payment per (non-pending) order in ``orders``."""
    m = orders.num_rows
    owners = orders["user_id"].to_numpy()
    order_status = orders["status"].to_numpy(zero_copy_only=False)
    status = np.where(order_status == "refunded", "refunded", "captured")
    status = np.where(order_status == "cancelled", "voided", status)
    charge = pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 2**40, m)), pa.string()), 14, "0")
    response = pc.binary_join_element_wise(
        '{"id": "ch_',
        charge,
        '", "billing_email": "',
        people.email.take(owners),
        '", "ip": "',
        people.ip.take(owners),
        '", "cardholder_name": "',
        pools.first_json.take(people.first[owners]),
        " ",
        pools.last_json.take(people.last[owners]),
        '"}',
        "",
    )
    last4 = pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 10000, m)), pa.string()), 4, "0")
    created = orders["created_at"].to_numpy() + _offsets(rng, m, seconds=90)
    return pa.table(
        {
            "id": pa.array(np.arange(done + 1, done + m + 1)),
            "order_id": orders["id"],
            "amount_cents": orders["total_cents"],
            "card_brand": pa.array(_CARD_BRANDS).take(rng.choice(4, m, p=[0.55, 0.3, 0.1, 0.05])),
            "card_last4": last4,
            "status": pa.array(status),
            "processor_response": response,
            "created_at": pa.array(created),
        }
    )


def _times(rng: np.random.Generator, lo: datetime, hi: datetime, n: int) -> np.ndarray:
    start = np.datetime64(lo, "us")
    span = int((hi - lo) / timedelta(microseconds=1))
    return start + rng.integers(0, span, n).astype("timedelta64[us]")


def _span(rng: np.random.Generator, spans: np.ndarray) -> np.ndarray:
    """A random offset inside each of ``spans`` (timedelta64[us])."""
    return (rng.random(len(spans)) * spans.astype(np.int64)).astype("timedelta64[us]")


def _offsets(rng: np.random.Generator, n: int, *, days: int = 0, seconds: int = 0) -> np.ndarray:
    top = (days * 86400 + seconds) * 1_000_000
    return rng.integers(1_000_000, top, n).astype("timedelta64[us]")


def _ips(rng: np.random.Generator, n: int) -> pa.Array:
    firsts = np.array([24, 31, 45, 62, 73, 81, 98, 104, 151, 172, 185, 203, 212], dtype=np.int64)
    octets = [firsts[rng.integers(0, len(firsts), n)], *(rng.integers(1, 255, n) for _ in range(3))]
    parts = [pc.cast(pa.array(o), pa.string()) for o in octets]
    return pc.binary_join_element_wise(*parts, ".")
