"""Run the whole curriculum: train.py then validate.py in every chapter, and write tour_report.md.

    uv run tour.py --quick          # smoke mode: every chapter's --quick run (about a minute each)
    uv run tour.py                  # the full default runs (up to ~10 minutes per chapter)
    uv run tour.py --only 1,3       # selected chapters

Each chapter's output streams to the terminal as it runs. The report has one row per chapter: whether
its scripts ran, whether validate.py's targets passed, its key metrics, training seconds and links to
its pictures. The exit code is 1 when any chapter's script crashed (a missed target is reported, not
treated as a crash).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def find_chapters(root: Path) -> list[Path]:
    """Numbered chapter folders ("1.video-encoder-decoder", ...) that have a train.py, in order."""
    found = [
        p for p in root.iterdir() if p.is_dir() and re.match(r"^\d+\.", p.name) and (p / "train.py").exists()
    ]
    return sorted(found, key=lambda p: int(p.name.split(".")[0]))


def run_script(chapter: Path, script: str, quick: bool) -> tuple[int, float]:
    """Run ``script`` inside ``chapter`` with this Python, streaming its output. Returns (exit code, s)."""
    cmd = [sys.executable, script] + (["--quick"] if quick else [])
    print(f"\n=== {chapter.name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.time()
    code = subprocess.run(cmd, cwd=chapter).returncode
    return code, time.time() - t0


def key_metrics(report: dict, n: int = 4) -> str:
    """The metrics that have targets (else the first few), as 'name value' pairs."""
    metrics = report.get("metrics", {})
    names = [k for k in report.get("targets", {}) if k in metrics] or list(metrics)
    return ", ".join(f"{k} {metrics[k]:.3g}" for k in names[:n])


def tour(root: Path, quick: bool, only: set[int] | None) -> tuple[list[dict], bool]:
    """Run the chapters; return (one result row per chapter, whether any script crashed)."""
    rows, crashed = [], False
    for chapter in find_chapters(root):
        number = int(chapter.name.split(".")[0])
        if only and number not in only:
            continue
        row = {
            "chapter": chapter.name,
            "ran": "ok",
            "passed": "-",
            "metrics": "",
            "train_s": "",
            "pictures": "",
        }
        metrics_file = chapter / "outputs" / "metrics.json"
        metrics_file.unlink(missing_ok=True)  # never report a stale result from an earlier run
        seconds = 0.0
        for script in ("train.py", "validate.py"):
            code, dt = run_script(chapter, script, quick)
            seconds += dt
            if code != 0:
                row["ran"] = f"{script} exited {code}"
                crashed = True
                break
        if row["ran"] == "ok" and metrics_file.exists():
            report = json.loads(metrics_file.read_text())
            row["passed"] = "yes" if report.get("passed") else "no"
            row["metrics"] = key_metrics(report)
            row["train_s"] = f"{report.get('train_seconds', 0):.0f}"
        elif row["ran"] == "ok":
            row["ran"] = "no outputs/metrics.json"
            crashed = True
        pictures = sorted((chapter / "outputs").glob("*.png")) + sorted((chapter / "outputs").glob("*.gif"))
        row["pictures"] = " ".join(f"[{p.stem}]({p.relative_to(root).as_posix()})" for p in pictures)
        row["wall_s"] = f"{seconds:.0f}"
        rows.append(row)
    return rows, crashed


def write_report(rows: list[dict], path: Path, quick: bool) -> None:
    """Write the markdown report: one table row per chapter."""
    mode = "quick (smoke test: targets are not expected to hold)" if quick else "full default runs"
    lines = [
        "# Tour report",
        "",
        f"Mode: {mode}. Written {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "| chapter | ran | passed targets | key metrics | train s | wall s | pictures |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["chapter"], r["ran"], r["passed"], r["metrics"], r["train_s"], r["wall_s"], r["pictures"]]
        lines.append("| " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def parse_only(text: str) -> set[int]:
    """'1,3' -> {1, 3}; anything else is an argparse error."""
    try:
        return {int(x) for x in text.split(",") if x.strip()}
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--only takes chapter numbers like 1,3 (got {text!r})") from e


def main(argv=None) -> int:
    """Parse flags, run the tour, write the report; return the process exit code."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="run each chapter's --quick mode")
    p.add_argument("--only", type=parse_only, default=None, help="comma-separated chapter numbers, e.g. 1,3")
    p.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # tests run a fake tree
    args = p.parse_args(argv)
    rows, crashed = tour(args.root, args.quick, args.only)
    if not rows:
        print("no chapter matched", file=sys.stderr)
        return 2
    report = args.root / "tour_report.md"
    write_report(rows, report, args.quick)
    print(f"\n{report.read_text()}\nwrote {report}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
