#!/usr/bin/env python3
"""SVG chart of a `make bench-peer` run: req/s per endpoint, our authz beside
node-oidc-provider, one pair of bars per endpoint and configuration.

usage: chart.py RESULTS_DIR OUT.svg

RESULTS_DIR holds bench.sh's `<UTC stamp>-<label>/summary.tsv` folders; for each label the
newest folder is used, so the chart shows one run. Labels pair up as `authz-<config>` and
`node-oidc-<config>` (jwt-rs256, opaque, jwt-es256). Standard library only.
"""
import csv
import pathlib
import sys
from xml.sax.saxutils import escape

CONFIGS = ["jwt-rs256", "opaque", "jwt-es256"]
OURS, PEER = "#2f6fb0", "#c2772b"


def newest(results):
    """{label: (stamp, {endpoint: req/s})} from the newest folder of each label."""
    out = {}
    for tsv in sorted(results.glob("*/summary.tsv")):
        stamp, _, label = tsv.parent.name.partition("-")
        with open(tsv) as f:
            rows = {r["endpoint"]: float(r["req_s"]) for r in csv.DictReader(f, delimiter="\t")}
        if label not in out or stamp > out[label][0]:
            out[label] = (stamp, rows)
    return out


def bars(runs):
    """[(config, endpoint, ours, peer)] for every endpoint measured on both sides."""
    out = []
    for config in CONFIGS:
        ours = runs.get(f"authz-{config}", (None, {}))[1]
        peer = runs.get(f"node-oidc-{config}", (None, {}))[1]
        for endpoint in ours:
            if endpoint in peer:
                out.append((config, endpoint, ours[endpoint], peer[endpoint]))
    return out


def svg(rows, stamps):
    width, label_w, bar_h, gap, top = 900, 300, 14, 12, 60
    plot_w = width - label_w - 90
    top_value = max(max(o, p) for _, _, o, p in rows)
    height = top + len(rows) * (2 * bar_h + gap) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">make bench-peer: requests/s per '
        f"endpoint, one core each (higher is better)</text>",
        f'<text x="10" y="40" fill="#555">runs {escape(", ".join(sorted(stamps)))}</text>',
        f'<rect x="{width - 260}" y="30" width="12" height="12" fill="{OURS}"/>'
        f'<text x="{width - 244}" y="40">authz (ours)</text>',
        f'<rect x="{width - 150}" y="30" width="12" height="12" fill="{PEER}"/>'
        f'<text x="{width - 134}" y="40">node-oidc-provider</text>',
    ]
    y = top
    for config, endpoint, ours, peer in rows:
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h + 4}" text-anchor="end">'
            f"{escape(endpoint)} ({config})</text>"
        )
        for value, color in ((ours, OURS), (peer, PEER)):
            w = max(1.0, plot_w * value / top_value)
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>'
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 3}">{value:,.0f}</text>'
            )
            y += bar_h
        parts.append(
            f'<text x="{width - 10}" y="{y - 3}" text-anchor="end" fill="#555">'
            f"{ours / peer:.1f}x</text>"
        )
        y += gap
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    runs = newest(pathlib.Path(sys.argv[1]))
    rows = bars(runs)
    if not rows:
        sys.exit(f"chart.py: no endpoint measured for both authz-* and node-oidc-* in {sys.argv[1]}")
    out = pathlib.Path(sys.argv[2])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(svg(rows, {s for s, _ in runs.values()}))
    print(f"chart: {out}")


if __name__ == "__main__":
    main()
