"""The ledger `bench/why.py` asks its questions of: a dataset of N records through ten steps.

    python bench/whydata.py --records 5000000 --out /tmp/why-5m

Support tickets (id, customer, channel, text) from one source, with an opt-out list of 1%
of the customers; ten pyarrow steps: normalise, trim, redact, tag, exclude the opted-out
customers, drop short texts, drop exact repeats, cap the length, stamp a version, and
number the rows. Recorded by `ledger.pipeline(...)` on the embedded SQLite store, and a
build trained on the dataset.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlprov.facade import Ledger

MODEL = "support-classifier-v1"
SEED = 11
WORDS = np.array(["invoice", "refund", "billing", "password", "login", "crash", "export"])


def customer(k: int) -> str:
    """The subject value of customer ``k``."""
    return f"user{k}@example.com"


def customers_of(records: int, rng: np.random.Generator | None = None) -> Any:
    """The customer of each ticket (drawn first from the generator of `make_data`)."""
    rng = rng or np.random.default_rng(SEED)
    return rng.integers(0, max(records // 5, 1), records)


def make_data(records: int, seed: int = SEED) -> tuple[pa.Table, pa.Table]:
    """Tickets of ~120 bytes, one customer per five tickets, 1% of texts repeated; the
    opt-out list names every hundredth customer."""
    rng = np.random.default_rng(seed)
    customers = customers_of(records, rng)
    words = WORDS[rng.integers(0, len(WORDS), (records, 2))]
    ids = np.arange(records, dtype=np.int64)
    text = pc.binary_join_element_wise(
        "  Ticket about ",
        pa.array(words[:, 0]),
        " and ",
        pa.array(words[:, 1]),
        ": Order ",
        pc.cast(pa.array(ids * 31 % 1_000_003), pa.string()),
        " from ",
        pa.array(customers.astype(str)),
        "  ",
        "",
    )
    repeat = rng.choice(records, records // 100, replace=False)
    source = np.arange(records)
    source[repeat] = (repeat + 1) % records
    text = text.take(pa.array(source))
    tickets = pa.table(
        {
            "ticket_id": ids,
            "customer_id": pa.array([customer(int(k)) for k in customers]),
            "channel": pa.array(np.where(ids % 3 == 0, "chat", "web")),
            "text": text,
        }
    )
    opted = np.arange(0, max(records // 5, 1), 100)
    optout = pa.table({"customer_id": pa.array([customer(int(k)) for k in opted])})
    return tickets, optout


def _set(t: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, values)


def lower(t: pa.Table) -> pa.Table:
    return _set(t, "text", pc.utf8_lower(t.column("text")))


def trim(t: pa.Table) -> pa.Table:
    return _set(t, "text", pc.utf8_trim_whitespace(t.column("text")))


def redact(t: pa.Table) -> pa.Table:
    return _set(t, "text", pc.replace_substring_regex(t.column("text"), r"order \d+", "order #"))


def tag(t: pa.Table) -> pa.Table:
    return t.append_column("topic", pc.utf8_slice_codeunits(t.column("text"), 13, 20))


def short(t: pa.Table) -> pa.Table:
    return t.filter(pc.greater_equal(pc.utf8_length(t.column("text")), 28))


def repeats(t: pa.Table) -> pa.Table:
    first = t.group_by("text").aggregate([("ticket_id", "min")]).column("ticket_id_min")
    return t.filter(pc.is_in(t.column("ticket_id"), value_set=first))


def cap(t: pa.Table) -> pa.Table:
    return _set(t, "text", pc.utf8_slice_codeunits(t.column("text"), 0, 40))


def stamp(t: pa.Table) -> pa.Table:
    return t.append_column("version", pa.array(["v1"] * t.num_rows))


def channel(t: pa.Table) -> pa.Table:
    return _set(t, "channel", pc.utf8_upper(t.column("channel")))


def build(folder: Path, records: int) -> dict[str, float]:
    """Record the ledger in `folder`; the time of each part."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    tickets, optout = make_data(records)
    times["data_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ledger = Ledger.init(folder)
    with ledger.pipeline("support-training", checkpoint=False) as p:
        df = p.source(
            tickets,
            "support-tickets@2026-05-22",
            key="ticket_id",
            subject="customer_id",
            personal_data=True,
        )
        opt = p.source(optout, "opt-out-list@2026-05-22", subject="customer_id")
        df = p.transform("lower-v1", lower, df)
        df = p.transform("trim-v1", trim, df)
        df = p.transform("redact-orders-v1", redact, df)
        df = p.transform("tag-topic-v1", tag, df)
        df = p.exclude("opt-out-removal-v1", df, using=opt, on="customer_id")
        df = p.transform("drop-short-v1", short, df)
        df = p.transform("drop-repeats-v1", repeats, df)
        df = p.transform("cap-length-v1", cap, df)
        df = p.transform("stamp-version-v1", stamp, df)
        df = p.transform("upper-channel-v1", channel, df)
        dataset = p.dataset(df, "support-training")
    ledger.build(MODEL, dataset=dataset, code_version="bench", force=True)
    ledger.close()
    times["capture_s"] = time.perf_counter() - t
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    print(build(args.out, args.records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
