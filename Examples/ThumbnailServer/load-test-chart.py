#!/usr/bin/env python3
"""Draws load-test.sh's results as an SVG: requests per second and latency percentiles per cache.

Usage: load-test-chart.py RESULTS_FILE OUTPUT_SVG SUBTITLE
RESULTS_FILE holds the LOAD (and CPU) lines load-test.sh printed. Standard library only.
"""
import math
import sys


def parse(path):
    loads, cpu = [], []
    with open(path) as handle:
        for line in handle:
            words = line.split()
            if not words:
                continue
            fields = dict(word.split("=", 1) for word in words[1:] if "=" in word)
            if words[0] == "LOAD":
                loads.append(fields)
            elif words[0] == "CPU":
                cpu.append(fields)
    return loads, cpu


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    results, output, subtitle = sys.argv[1], sys.argv[2], sys.argv[3]
    loads, cpu = parse(results)
    width, height = 900, 420
    colours = {"volatile": "#2b7bba", "nscache": "#c0392b", "nscache-tuned": "#e67e22", "none": "#7f8c8d"}
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="20" y="24" font-size="16" font-weight="bold">Thumbnail server under load: requests per second and latency per cache</text>',
        f'<text x="20" y="44" fill="#555">{escape(subtitle)}</text>',
    ]
    top, bottom = 80, 340
    # Left panel: requests per second.
    left, panel = 60, 330
    max_rps = max([number(l.get("rps")) for l in loads] + [1.0])
    scale = 10 ** math.floor(math.log10(max_rps))
    ceiling = math.ceil(max_rps / scale) * scale
    svg.append(f'<text x="{left}" y="{top - 12}" font-weight="bold">requests per second (higher is better)</text>')
    for step in range(0, 5):
        value = ceiling * step / 4
        y = bottom - (bottom - top) * step / 4
        svg.append(f'<line x1="{left}" x2="{left + panel}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{value:g}</text>')
    slot = panel / max(len(loads), 1)
    for index, load in enumerate(loads):
        cache = load.get("cache", "?")
        rps = number(load.get("rps"))
        bar = (bottom - top) * rps / ceiling
        x = left + slot * index + slot * 0.15
        colour = colours.get(cache, "#555")
        svg.append(f'<rect x="{x:.1f}" y="{bottom - bar:.1f}" width="{slot * 0.7:.1f}" height="{bar:.1f}" fill="{colour}"/>')
        label = "OOM-killed" if load.get("oom") == "true" else f"{rps:.0f}"
        svg.append(f'<text x="{x + slot * 0.35:.1f}" y="{bottom - bar - 5:.1f}" text-anchor="middle">{label}</text>')
        svg.append(f'<text x="{x + slot * 0.35:.1f}" y="{bottom + 16}" text-anchor="middle">{escape(cache)}</text>')
    # Right panel: latency percentiles, log scale.
    left2, panel2 = 500, 360
    latencies = [number(l.get(key)) for l in loads for key in ("p50_ms", "p99_ms", "p999_ms")]
    positive = [value for value in latencies if value > 0] or [1.0]
    low = 10 ** math.floor(math.log10(min(positive)))
    high = 10 ** math.ceil(math.log10(max(positive) * 1.01))
    decades = max(1, round(math.log10(high / low)))
    svg.append(f'<text x="{left2}" y="{top - 12}" font-weight="bold">latency, ms, log scale (lower is better)</text>')
    for step in range(decades + 1):
        value = low * 10 ** step
        y = bottom - (bottom - top) * step / decades
        svg.append(f'<line x1="{left2}" x2="{left2 + panel2}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{left2 - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{value:g}</text>')
    slot2 = panel2 / max(len(loads), 1)
    shades = [("p50_ms", 1.0, "p50"), ("p99_ms", 0.65, "p99"), ("p999_ms", 0.35, "p99.9")]
    for index, load in enumerate(loads):
        cache = load.get("cache", "?")
        colour = colours.get(cache, "#555")
        for offset, (key, opacity, _) in enumerate(shades):
            value = number(load.get(key))
            if value <= 0:
                continue
            bar = (bottom - top) * math.log10(max(value, low) / low) / decades
            x = left2 + slot2 * index + slot2 * 0.1 + offset * slot2 * 0.27
            svg.append(f'<rect x="{x:.1f}" y="{bottom - bar:.1f}" width="{slot2 * 0.25:.1f}" height="{bar:.1f}" '
                       f'fill="{colour}" fill-opacity="{opacity}"/>')
            svg.append(f'<text x="{x + slot2 * 0.125:.1f}" y="{bottom - bar - 4:.1f}" text-anchor="middle" font-size="9">{value:.0f}</text>')
        svg.append(f'<text x="{left2 + slot2 * (index + 0.5):.1f}" y="{bottom + 16}" text-anchor="middle">{escape(cache)}</text>')
    for offset, (_, opacity, name) in enumerate(shades):
        x = left2 + offset * 80
        svg.append(f'<rect x="{x}" y="{bottom + 28}" width="12" height="12" fill="#333" fill-opacity="{opacity}"/>')
        svg.append(f'<text x="{x + 16}" y="{bottom + 38}">{name}</text>')
    if cpu:
        text = "; ".join(f'{c.get("cache")}: {c.get("cpu_us_per_request")} µs CPU per request' for c in cpu)
        overhead = next((c.get("overhead_vs_preloaded_pct") for c in cpu if c.get("overhead_vs_preloaded_pct")), None)
        if overhead is not None:
            text += f" (volatile over preloaded: {overhead} %)"
        svg.append(f'<text x="20" y="{height - 14}" fill="#555">CPU, small gallery that fits in memory: {escape(text)}</text>')
    svg.append("</svg>")
    with open(output, "w") as handle:
        handle.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
