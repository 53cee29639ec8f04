"""A PII-heavy database for ``benchmarks/replica.py --shape pii``: where the scrubbers earn their keep.

Two tables, ``rows`` in all (one third people, two thirds tickets):

* ``people``: name, email, phone, street address, an SSN-shaped tax id, a login IP, and a JSONB
  ``profile`` with nested contacts (names, emails, phones) and harmless preferences;
* ``support_tickets``: a subject and a free-text ``body``; about half the bodies carry phones in
  several shapes, emails, card numbers (Luhn-valid or not), API tokens and IPs, the rest only
  order numbers, dates and prices that must survive scrubbing.

Values come from small Faker pools combined at random (numpy), so a few million rows take
seconds to make, not Faker's hours. The same ``seed`` gives the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from faker import Faker

from ladder.connectors.postgres import connect

POLICY = Path(__file__).with_name("pii-policy.yaml")
TABLES = ("people", "support_tickets")
POOL = 4000
BATCH = 50_000

SCHEMA = """
CREATE TABLE people (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    phone text,
    street text,
    tax_id text,
    last_ip inet,
    profile jsonb,
    created_at timestamp NOT NULL
);
CREATE TABLE support_tickets (
    id bigint PRIMARY KEY,
    person_id bigint NOT NULL REFERENCES people (id),
    subject text NOT NULL,
    body text NOT NULL,
    created_at timestamp NOT NULL
);
CREATE INDEX support_tickets_person_id ON support_tickets (person_id);
CREATE UNIQUE INDEX people_email ON people (email);
"""


def _pools(seed: int) -> dict[str, list[str]]:
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
    Faker.seed(seed)
    return {
        "name": [fake.name() for _ in range(POOL)],
        "phone": [fake.phone_number() for _ in range(POOL)],
        "street": [fake.street_address() for _ in range(POOL)],
        "card": [fake.credit_card_number() for _ in range(POOL)],
        "word": [fake.word() for _ in range(POOL)],
        "ip": [fake.ipv4_public() for _ in range(POOL)],
    }


def _tickets_text(rng: np.random.Generator, pools: dict[str, list[str]], n: int) -> list[str]:
    """Free text: about half with PII in it, the rest with look-alikes that must stay."""
    pick = {k: rng.integers(0, POOL, n) for k in pools}
    digits = rng.integers(10**15, 10**16, n)
    shapes = rng.integers(0, 6, n)
    out = []
    for i in range(n):
        words = " ".join(pools["word"][(pick["word"][i] + j) % POOL] for j in range(6))
        shape = shapes[i]
        if shape == 0:
            out.append(f"Please call me at {pools['phone'][pick['phone'][i]]} about {words}")
        elif shape == 1:
            card = pools["card"][pick["card"][i]]
            out.append(f"card on file {card}, also tried {digits[i]} — {words}")
        elif shape == 2:
            name = pools["name"][pick["name"][i]]
            out.append(f"{name} <user{i}@mail-{i % 97}.com> from {pools['ip'][pick['ip'][i]]}")
        elif shape == 3:
            out.append(f"token sk_live_{digits[i]:x}{i:08x} leaked in {words}")
        else:
            out.append(
                f"Order R{100000000 + i} delayed since 2026-11-0{1 + i % 9}, {i % 500}.99 € {words}"
            )
    return out


def _people(
    rng: np.random.Generator, pools: dict[str, list[str]], start: int, n: int
) -> Iterator[tuple]:
    pick = {k: rng.integers(0, POOL, n) for k in pools}
    for j in range(n):
        i = start + j
        name = pools["name"][pick["name"][j]]
        contact = pools["name"][(pick["name"][j] + 1) % POOL]
        profile = {
            "contacts": [
                {
                    "name": contact,
                    "email": f"c{i}@example-mail.com",
                    "phone": pools["phone"][(pick["phone"][j] + 1) % POOL],
                }
            ],
            "prefs": {"newsletter": bool(i % 2), "locale": "en"},
        }
        yield (
            i,
            name,
            f"p{i}@mail-{i % 97}.com",
            pools["phone"][pick["phone"][j]],
            pools["street"][pick["street"][j]],
            f"{100 + i % 800:03d}-{10 + i % 89:02d}-{1000 + i % 8999:04d}",
            pools["ip"][pick["ip"][j]],
            json.dumps(profile),
            "2026-10-01 12:00:00",
        )


def seed_pii(dsn: str, rows: int, seed: int = 11, say: Callable[[str], None] = print) -> dict:
    """Create and fill the two tables in the empty database ``dsn``; their row counts."""
    rng = np.random.default_rng(seed)
    pools = _pools(seed)
    people = max(1, rows // 3)
    tickets = rows - people
    with connect(dsn) as conn:
        conn.execute(SCHEMA)
        with conn.cursor().copy(
            "COPY people (id, name, email, phone, street, tax_id, last_ip, profile, created_at)"
            " FROM STDIN"
        ) as copy:
            for start in range(1, people + 1, BATCH):
                for row in _people(rng, pools, start, min(BATCH, people + 1 - start)):
                    copy.write_row(row)
                say(f"people: {min(start + BATCH - 1, people):,}")
        with conn.cursor().copy(
            "COPY support_tickets (id, person_id, subject, body, created_at) FROM STDIN"
        ) as copy:
            for start in range(1, tickets + 1, BATCH):
                n = min(BATCH, tickets + 1 - start)
                owners = rng.integers(1, people + 1, n)
                for j, body in enumerate(_tickets_text(rng, pools, n)):
                    copy.write_row(
                        (
                            start + j,
                            int(owners[j]),
                            f"ticket {start + j}",
                            body,
                            "2026-11-01 09:30:00",
                        )
                    )
                say(f"support_tickets: {min(start + BATCH - 1, tickets):,}")
        conn.commit()
        conn.execute("ANALYZE")
    return {"people": people, "support_tickets": tickets}
