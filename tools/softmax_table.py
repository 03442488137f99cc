#!/usr/bin/env python3
"""Builds docs/records/zen3-avx2/softmax-shapes.md's tables from scale-test JSON reports of the same sweep.

    for i in 1 2 3; do .build/release/scale-test --ops softmax,log_softmax,softmax_dim0 \\
        --sizes 4096x4096,65536x256,256x65536,8x2097152 --thread-list 1,2 --repetitions 15 \\
        --format json > /tmp/softmax-$i.json; done
    python3 tools/softmax_table.py /tmp/softmax-{1,2,3}.json
"""
import json, sys

runs = [json.load(open(p)) for p in sys.argv[1:]]
def cell(vals, fmt):
    return " / ".join(fmt % v for v in vals)

keys = []
for r in runs[0]["results"]:
    k = (r["op"], tuple(r["shape"]))
    if k not in keys:
        keys.append(k)
def rec(run, k, t):
    return next(r for r in run["results"] if (r["op"], tuple(r["shape"])) == k and r["threads"] == t)

print("| op | shape | 1 worker ns/elem | 2 workers ns/elem | 2-worker speedup | ceiling | % of copy bandwidth at 2 |")
print("|---|---|---|---|---|---|---|")
for k in sorted(keys, key=lambda k: (["softmax", "log_softmax", "softmax_dim0"].index(k[0]), "x".join(map(str, k[1])))):
    one = [rec(r, k, 1) for r in runs]
    two = [rec(r, k, 2) for r in runs]
    # fraction of the copy bandwidth: bytes moved at the op's speed over the copy's
    bw = [t["gb_per_s"] / t["copy_gb_per_s"] * 100 for t in two]
    print(f"| {k[0]} | {'x'.join(map(str, k[1]))} | {cell([t['ns_per_element'] for t in one], '%.3f')} | "
          f"{cell([t['ns_per_element'] for t in two], '%.3f')} | {cell([t['speedup'] for t in two], '%.2f')} | "
          f"{cell([t['compute_capacity'] for t in two], '%.2f')} | {cell(bw, '%.0f')} |")

print()
print("dim 0 of 4096x4096 against the last dim, same run:")
print()
print("| run | 1 worker: dim 0 / last dim | 2 workers |")
print("|---|---|---|")
for i, r in enumerate(runs, 1):
    k0, k1 = ("softmax_dim0", (4096, 4096)), ("softmax", (4096, 4096))
    a = [rec(r, k0, t)["median_seconds"] / rec(r, k1, t)["median_seconds"] for t in (1, 2)]
    print(f"| {i} | {a[0]:.2f}x | {a[1]:.2f}x |")
print()
print("Copy bandwidth (streaming stores, 2^24 floats) measured in each run, 2 workers: "
      + " / ".join("%.1f" % r["machine"]["copy_gb_per_s"] for r in runs) + " GB/s.")
