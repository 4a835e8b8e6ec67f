"""Fingerprint benchmark: each figure beside baselines measured in the same run.

    python bench/fingerprint.py [--records 5000000] [--optouts 1000000] [--json]

On a generated Parquet file of records of ~200 bytes (id, text, user):
- end-to-end fingerprint (read, canonicalise, hash, sort, tree, store), records/s, and the
  time of its stages (read to sorted set; shard and top trees, with the saving that runs
  beside them), beside
  (a) the hash-bound limit: hashlib SHA-256 over the same canonical bytes as one stream
      plus the tree's node hashes, on all cores; and
  (b) a plain Python loop of `json.dumps` + `hashlib` per record;
- peak memory (resident set) of the fingerprint;
- membership and non-membership proofs: generate and verify, with their sizes;
- opt-out check: subjects of an opt-out list looked up in the record set.

Targets (from the issue): >= 1.5M records/s end-to-end, peak memory < 1.5 GB, proofs < 1 ms,
1M opt-out subjects against 5M records < 2 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlprov.records.canonical import canonical_record
from mlprov.records.fingerprint import fingerprint
from mlprov.records.readers import read_batches
from mlprov.records.subjects import SubjectHasher

WORDS = ["invoice", "refund", "billing", "password", "login"]
WORDS += ["crash", "export", "delivery", "account", "upgrade"]


def make_parquet(path: Path, count: int, batch: int = 500_000) -> None:
    """`count` rows of ~200 bytes: id, a ~150-character text, a user e-mail."""
    schema = pa.schema([("id", pa.int64()), ("text", pa.string()), ("user", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, count, batch):
            n = min(batch, count - start)
            ids = list(range(start, start + n))
            texts = [
                f"ticket {i}: my {WORDS[i % 10]} is wrong since the {WORDS[(i * 7) % 10]} "
                f"of last week, please check order {i * 31 % 100000:05d} and reply soon"
                for i in ids
            ]
            users = [f"user{i % 1_000_000}@example.com" for i in ids]
            writer.write_table(pa.table({"id": ids, "text": texts, "user": users}, schema=schema))


# Inherited by forked workers as one read-only blob: no pickling, and no copy-on-write
# faults from touching a million shared objects' reference counts.
_SHARED: dict[str, object] = {}


def _hash_stream(part: tuple[int, int]) -> float:
    """Hash every `step`-th record from `first` as one stream, plus ~2 node hashes per
    record for the tree; returns the seconds it took (timed inside the worker)."""
    first, step = part
    blob = memoryview(_SHARED["blob"])  # type: ignore[arg-type]
    ends: list[int] = _SHARED["ends"]  # type: ignore[assignment]
    t = time.perf_counter()
    h = hashlib.sha256()
    count = 0
    for k in range(first, len(ends), step):
        h.update(blob[ends[k - 1] if k else 0 : ends[k]])
        count += 1
    node = b"\x01" + bytes(64)
    for _ in range(count * 2):
        hashlib.sha256(node).digest()
    return time.perf_counter() - t


def hash_bound(canonical: list[bytes]) -> float:
    """Records/s when hashing is all there is, on all cores (the slowest worker counts)."""
    workers = os.cpu_count() or 1
    ends, at = [], 0
    for b in canonical:
        at += len(b)
        ends.append(at)
    _SHARED.update(blob=b"".join(canonical), ends=array("q", ends))
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        slowest = max(pool.map(_hash_stream, [(i, workers) for i in range(workers)]))
    _SHARED.clear()
    return len(canonical) / slowest


def plain_loop(rows: list[dict[str, object]]) -> float:
    t = time.perf_counter()
    for r in rows:
        hashlib.sha256(json.dumps(r, sort_keys=True, separators=(",", ":")).encode()).digest()
    return len(rows) / (time.perf_counter() - t)


def median_us(fn: Callable[[], object], repeat: int = 200) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--optouts", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlprov-bench-") as tmp:
        work = Path(tmp)
        data = work / "records.parquet"
        make_parquet(data, args.records)
        hasher = SubjectHasher(b"\x07" * 32)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        found = fingerprint(data, key="id", subject="user", hasher=hasher)
        t_read = time.perf_counter()
        saved = found.records.save(work / "blobs")  # writes the rows while the trees hash
        t_saved = time.perf_counter()
        end_to_end = args.records / (t_saved - t)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stages = {"read_hash_sort_s": t_read - t, "trees_and_save_s": t_saved - t_read}
        t = time.perf_counter()
        for _ in read_batches(data):
            pass
        stages["parquet_read_alone_s"] = time.perf_counter() - t

        sample = pq.read_table(data).slice(0, min(args.records, 1_000_000)).to_pylist()
        canonical = [canonical_record(r) for r in sample]
        bound = hash_bound(canonical)
        loop = plain_loop(sample)

        records = found.records
        member = next(iter(records))
        absent = hashlib.sha256(b"not a record").digest()
        records.prove(member)  # builds that shard's tree once, as any first proof does
        records.prove(absent)
        gen_in = median_us(lambda: records.membership_proof(member))
        gen_out = median_us(lambda: records.non_membership_proof(absent))
        p_in, p_out = records.membership_proof(member), records.non_membership_proof(absent)
        ver_in = median_us(lambda: p_in.verify(records.root))
        ver_out = median_us(lambda: p_out.verify(records.root))

        optouts = [hasher.hash(f"user{i * 3}@example.com") for i in range(args.optouts)]
        t = time.perf_counter()
        hits = records.subjects_in(optouts)
        optout_s = time.perf_counter() - t

    out = {
        "records": args.records,
        "cpus": os.cpu_count(),
        "end_to_end_per_s": end_to_end,
        "hash_bound_per_s": bound,
        "plain_loop_per_s": loop,
        "ratio_to_hash_bound": end_to_end / bound,
        "ratio_to_plain_loop": end_to_end / loop,
        "stages": stages,
        "peak_rss_mib": peak_mib,
        "rss_before_mib": rss_before / 1024,
        "set_file_mib": saved.stat().st_size / 2**20 if saved.exists() else None,
        "membership_us": [gen_in, ver_in, len(p_in.dumps())],
        "non_membership_us": [gen_out, ver_out, len(p_out.dumps())],
        "optouts": args.optouts,
        "optout_hits": len(hits),
        "optout_check_s": optout_s,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"fingerprint of {args.records:,} records (~200 bytes), {out['cpus']} cores")
    print(f"end to end:        {end_to_end:>12,.0f} records/s   (target >= 1,500,000)")
    print(f"hash-bound limit:  {bound:>12,.0f} records/s   ratio {end_to_end / bound:.2f}")
    print(f"plain Python loop: {loop:>12,.0f} records/s   ratio {end_to_end / loop:.2f}")
    print(
        "  stages:          "
        f"read+canonicalise+hash+subjects+sort {stages['read_hash_sort_s']:.2f} s, "
        f"trees with saving beside them {stages['trees_and_save_s']:.2f} s "
        f"(Parquet reading alone {stages['parquet_read_alone_s']:.2f} s)"
    )
    print(f"peak memory:       {peak_mib:>12,.0f} MiB         (target < 1,536)")
    print(
        f"membership proof:  {gen_in:>8.0f} us to generate, {ver_in:.0f} us to verify, "
        f"{len(p_in.dumps())} bytes (target < 1,000 us)"
    )
    print(
        f"non-membership:    {gen_out:>8.0f} us to generate, {ver_out:.0f} us to verify, "
        f"{len(p_out.dumps())} bytes"
    )
    print(
        f"opt-out check:     {args.optouts:,} subjects in {optout_s:.2f} s, {len(hits):,} found "
        f"(target < 2 s for 1M against 5M)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
