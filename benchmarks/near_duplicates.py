"""Benchmark: near-duplicate lookup of one perceptual hash against 1,000,000 stored hashes.

Target (issue 3): at most 50 ms per lookup. The in-memory index (annotation.imaging.HashIndex: XOR and
np.bitwise_count over a uint64 array, loaded once per import batch) is measured; with --postgres the same
scan done in SQL (bit_count over a bigint column) is measured for comparison. Prints one JSON object.
    .venv/bin/python benchmarks/near_duplicates.py [--postgres postgres://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from annotation.imaging import HashIndex

N = 1_000_000
LOOKUPS = 200


def measure_numpy(hashes: np.ndarray, probes: np.ndarray) -> dict:
    started = time.perf_counter()
    index = HashIndex(hashes, np.arange(N))
    build = time.perf_counter() - started
    runs, found = [], 0
    for probe in probes.tolist():
        t = time.perf_counter()
        found += index.nearest(probe, 8) is not None
        runs.append(time.perf_counter() - t)
    runs.sort()
    return {
        "build_ms": round(1000 * build, 1),
        "lookup_ms_median": round(1000 * statistics.median(runs), 2),
        "lookup_ms_p95": round(1000 * runs[int(0.95 * len(runs))], 2),
        "found": found,
    }


def measure_postgres(url: str, hashes: np.ndarray, probes: np.ndarray) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("CREATE TEMP TABLE h (id bigint, phash bigint)")
        with conn.cursor().copy("COPY h (id, phash) FROM STDIN") as copy:
            for row in zip(range(N), hashes.tolist(), strict=True):
                copy.write_row(row)
        conn.execute("ANALYZE h")
        runs = []
        for probe in probes[:20].tolist():
            t = time.perf_counter()
            conn.execute("SELECT id, bit_count(int8send(phash # %s)) d FROM h ORDER BY d LIMIT 1", (probe,)).fetchone()
            runs.append(time.perf_counter() - t)
    return {"lookup_ms_median": round(1000 * statistics.median(runs), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a database URL to compare a SQL scan against")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    hashes = rng.integers(-(2**63), 2**63 - 1, N, dtype=np.int64)
    # Half the probes are stored hashes with 3 bits flipped (near-duplicates), half are random.
    flips = np.bitwise_or.reduce(np.left_shift(np.int64(1), rng.integers(0, 63, (LOOKUPS // 2, 3))), axis=1)
    probes = np.concatenate([hashes[: LOOKUPS // 2] ^ flips, rng.integers(-(2**63), 2**63 - 1, LOOKUPS // 2)])
    figures = {"cpu_count": os.cpu_count(), "stored_hashes": N, "lookups": LOOKUPS}
    figures["numpy_index"] = measure_numpy(hashes, probes)
    if args.postgres:
        figures["postgresql_scan"] = measure_postgres(args.postgres, hashes, probes)
    figures["targets"] = {"lookup_ms_max": 50}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
