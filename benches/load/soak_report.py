#!/usr/bin/env python3
"""The soak's report (benches/load/soak.sh): reads what the run left in its work folder,
writes NAME.csv (the samples, seconds from the soak's start, with the load of the interval
each closes), NAME-incidents.csv (failed requests and WebSocket sessions closed by the
server), NAME.svg (the plot: RSS, open file descriptors with the TCP connections among them,
threads, and the request rate with failures, events marked) and NAME.txt (the summary, also
printed). Python 3 standard library only.

    soak_report.py --work DIR --out DIR --name soak-600s --warmup 60

Failures are placed against the events: the crash window runs from the backend's SIGKILL to
CRASH_WINDOW_S seconds after the new backend was seen; everything else is outside it.
"""
import argparse
import csv
import os
import statistics

CRASH_WINDOW_S = 5.0


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--warmup", type=float, default=60)
    a = ap.parse_args()

    samples = read_csv(os.path.join(a.work, "samples.csv"))
    events = read_csv(os.path.join(a.work, "events.csv"))
    seconds = read_csv(os.path.join(a.work, "load", "seconds.csv"))
    incidents = read_csv(os.path.join(a.work, "load", "incidents.csv"))
    failures = [i for i in incidents if i["kind"] != "ws-closed-by-server"]
    ws_closed = [i for i in incidents if i["kind"] == "ws-closed-by-server"]
    ev = {}
    for e in events:
        ev.setdefault(e["event"], e)
    t0 = int(ev["soak_start"]["unix_ms"]) / 1000

    def rel(ms):
        return int(ms) / 1000 - t0

    per_s = [(int(s["unix_s"]) - t0, int(s["get_ok"]), int(s["post_ok"]), int(s["ws_ok"]),
              int(s["failed"]), int(s["p50_us"]), int(s["p99_us"])) for s in seconds]
    rows = []
    prev = None
    for s in samples:
        t = rel(s["unix_ms"])
        # The load of the interval this sample closes.
        span = [p for p in per_s if (prev is None or p[0] > prev) and p[0] <= t] if prev is not None else []
        prev = t
        rows.append({
            "t_s": round(rel(s["unix_ms"]), 1),
            "phase": s["phase"],
            "rss_kib": int(s["rss_kib"]),
            "fds": int(s["fds"]),
            "threads": int(s["threads"]),
            "client_conns": int(s["client_conns"]),
            "backend_conns": int(s["backend_conns"]),
            "backend_pid": s["backend_pid"],
            "http_ok_per_s": round(sum(p[1] + p[2] for p in span) / len(span)) if span else 0,
            "failed": sum(p[4] for p in span),
            "p99_ms": round(max(p[6] for p in span) / 1000, 2) if span else "",
        })
    with open(os.path.join(a.out, a.name + ".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


    # Failures against the events.
    crash = rel(ev["crash"]["unix_ms"]) if "crash" in ev else None
    restarted = rel(ev["restarted"]["unix_ms"]) if "restarted" in ev else crash
    change = rel(ev["config_change"]["unix_ms"]) if "config_change" in ev else None
    recycled = rel(ev["recycled"]["unix_ms"]) if "recycled" in ev else change
    inside, outside = [], []
    for f in failures:
        t = rel(f["unix_ms"])
        if crash is not None and crash <= t <= restarted + CRASH_WINDOW_S:
            inside.append((t, f))
        else:
            outside.append((t, f))

    def kinds(items):
        out = {}
        for _, f in items:
            out[f["kind"]] = out.get(f["kind"], 0) + 1
        return ", ".join(f"{k} {n}" for k, n in sorted(out.items())) or "none"

    soak = [r for r in rows if r["phase"] == "soak"]
    warm = [r for r in soak if r["t_s"] >= a.warmup]
    base = next((r for r in rows if r["phase"] == "baseline"), None)
    idle = [r for r in rows if r["phase"] == "idle"]
    rss = [r["rss_kib"] for r in warm]
    med = statistics.median(rss) if rss else 0
    lo = min(rss) if rss else 0
    hi = max(rss) if rss else 0
    spread = max(abs(hi - med), abs(med - lo)) / med * 100 if med else 0
    cpu = dict(kv.split("=") for kv in ev["idle_cpu"]["detail"].split()) if "idle_cpu" in ev else {}
    idle_ms = int(cpu.get("ticks", 0)) * 1000 / int(cpu.get("hz", 100))
    idle_s = float(cpu.get("seconds", 60))
    with open(os.path.join(a.out, a.name + "-incidents.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "kind", "detail"])
        for i in incidents:
            w.writerow([f"{rel(i['unix_ms']):.3f}", i["kind"], i["detail"]])

    target = int(ev["soak_start"]["detail"].split("=")[1])
    steady = [p for p in per_s if p[0] >= a.warmup]
    achieved = statistics.mean([p[1] + p[2] + p[4] for p in steady]) if steady else 0
    lines = [
        f"soak {a.name}: target {target} req/s; probe (full speed): {ev['probe']['detail']}",
        f"load: {ev.get('soak_end', {}).get('detail', '?')}",
        f"  after warm-up {achieved:.0f} req/s on average ({achieved / target * 100:.0f} % of the target); "
        f"answered OK: GET {sum(p[1] for p in per_s)}, 64 KiB POST {sum(p[2] for p in per_s)}, "
        f"WebSocket echoes {sum(p[3] for p in per_s)}; latency from the scheduled time, median over "
        f"seconds: p50 {statistics.median([p[5] for p in steady]) / 1000:.2f} ms, "
        f"p99 {statistics.median([p[6] for p in steady]) / 1000:.2f} ms (worst second "
        f"{max(p[6] for p in steady) / 1000:.1f} ms)" if steady else "  no per-second data",
        f"backend crash at {crash:.1f} s, new backend seen at {restarted:.1f} s; "
        f"web.config change at {change:.1f} s, new backend serving at {recycled:.1f} s"
        if crash is not None and change is not None else "events missing",
        f"failed: {len(failures)} in all; in the crash window ({crash:.1f}..{restarted + CRASH_WINDOW_S:.1f} s): "
        f"{len(inside)} ({kinds(inside)}); outside it: {len(outside)} ({kinds(outside)})"
        if crash is not None else f"failed: {len(failures)}",
    ]
    if ws_closed:
        times = ", ".join(f"{rel(i['unix_ms']):.1f}" for i in ws_closed)
        lines.append(f"WebSocket sessions closed by the server (close frame, reopened; not failures): {len(ws_closed)} at {times} s")
    if inside:
        lines.append(f"  crash-window failures from {inside[0][0] - crash:+.3f} s to {inside[-1][0] - crash:+.3f} s after the kill")
    for t, f in outside[:10]:
        lines.append(f"  outside: {t:.3f} s {f['kind']} {f['detail']}")
    lines += [
        f"RSS after the {a.warmup:.0f} s warm-up: median {med / 1024:.1f} MiB, min {lo / 1024:.1f}, "
        f"max {hi / 1024:.1f} -> within {spread:.1f} % of the median (target 5 %)",
        f"fds: baseline {base['fds'] if base else '?'} (idle before the soak; "
        f"{base['backend_conns'] if base else '?'} backend connections), during the soak "
        f"{min(r['fds'] for r in soak)}..{max(r['fds'] for r in soak)}, "
        f"after {idle_s:.0f} s idle {idle[-1]['fds'] if idle else '?'} "
        f"({idle[-1]['client_conns'] if idle else '?'} client and {idle[-1]['backend_conns'] if idle else '?'} backend connections)",
        f"threads: {sorted(set(r['threads'] for r in rows))}",
        f"idle CPU over {idle_s:.0f} s alone: {idle_ms:.0f} ms ({idle_ms / idle_s / 10:.3f} % of one CPU)",
        f"gateway exit: {ev.get('exit', {}).get('detail', '?')}; load average at the end: {ev.get('loadavg', {}).get('detail', '?')}",
    ]
    summary = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, a.name + ".txt"), "w") as f:
        f.write(summary)
    print(summary, end="")

    svg = plot(rows, [(p[0], p[1] + p[2]) for p in per_s], [(crash, "backend SIGKILL", "#c0392b"), (change, "web.config change", "#2471a3"),
                             (rel(ev["soak_end"]["unix_ms"]) if "soak_end" in ev else None, "load ends", "#7f8c8d")],
               failures=[(rel(f["unix_ms"])) for f in failures], title=a.name)
    with open(os.path.join(a.out, a.name + ".svg"), "w") as f:
        f.write(svg)


def plot(rows, per_s, marks, failures, title):
    """Four panels over one time axis, as polylines."""
    W, PH, L, R, GAP, TOP = 900, 150, 70, 20, 40, 40
    panels = [
        ("RSS (MiB)", [("RSS", "#2c3e50", [(r["t_s"], r["rss_kib"] / 1024) for r in rows])]),
        ("open fds", [("all fds", "#2c3e50", [(r["t_s"], r["fds"]) for r in rows]),
                      ("client conns", "#27ae60", [(r["t_s"], r["client_conns"]) for r in rows]),
                      ("backend conns", "#d35400", [(r["t_s"], r["backend_conns"]) for r in rows])]),
        ("threads", [("threads", "#2c3e50", [(r["t_s"], r["threads"]) for r in rows])]),
        ("requests/s", [("HTTP OK/s", "#2c3e50", per_s)]),
    ]
    H = TOP + len(panels) * (PH + GAP) + 20
    xs = [r["t_s"] for r in rows] + [t for t, _ in per_s]
    x0, x1 = min(0, min(xs)), max(xs)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="20" font-size="14">{title}: ancm under load, backend crash and web.config change, then idle</text>']

    def X(t):
        return L + (t - x0) / ((x1 - x0) or 1) * (W - L - R)

    for i, (label, series) in enumerate(panels):
        top = TOP + i * (PH + GAP)
        vals = [v for _, _, pts in series for _, v in pts]
        y1 = max(vals) * 1.1 if vals and max(vals) > 0 else 1
        y0 = 0

        def Y(v):
            return top + PH - (v - y0) / (y1 - y0) * PH

        out.append(f'<rect x="{L}" y="{top}" width="{W - L - R}" height="{PH}" fill="none" stroke="#bbb"/>')
        out.append(f'<text x="{L - 60}" y="{top - 6}" font-size="12">{label}</text>')
        for k in range(5):
            v = y0 + (y1 - y0) * k / 4
            out.append(f'<text x="{L - 5}" y="{Y(v) + 4:.1f}" text-anchor="end" fill="#555">{v:.0f}</text>')
            out.append(f'<line x1="{L}" x2="{W - R}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#eee"/>')
        for t, name, color in marks:
            if t is not None:
                out.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top}" y2="{top + PH}" stroke="{color}" stroke-dasharray="4 3"/>')
                if i == 0:
                    out.append(f'<text x="{X(t) + 3:.1f}" y="{top + 12}" fill="{color}">{name}</text>')
        for n, (name, color, pts) in enumerate(series):
            if not pts:
                continue
            path = " ".join(f"{X(t):.1f},{Y(v):.1f}" for t, v in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
            out.append(f'<text x="{W - R - 5}" y="{top + 14 + 13 * n}" text-anchor="end" fill="{color}">{name}</text>')
        if label == "requests/s":
            for t in failures:
                out.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top + PH - 8}" y2="{top + PH}" stroke="#c0392b" stroke-width="2"/>')
            out.append(f'<text x="{L + 5}" y="{top + PH - 12}" fill="#c0392b">red ticks: failed requests ({len(failures)})</text>')
        for k in range(6):
            t = x0 + (x1 - x0) * k / 5
            out.append(f'<text x="{X(t):.1f}" y="{top + PH + 13}" text-anchor="middle" fill="#555">{t:.0f} s</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
