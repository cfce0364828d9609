"""Run the whole curriculum: train.py then validate.py in every chapter, and write tour_report.md.

    uv run tour.py                  # the quick tour: every chapter's --quick run (1-2 minutes each)
    uv run tour.py --full           # the full default runs (3 to 17 minutes per chapter)
    uv run tour.py --only 1,3       # selected chapters (quick unless --full)
    uv run tour.py --out /tmp/tour  # where its data, checkpoints, pictures and report go (default: tour/)

Every chapter runs with an output root of its own (`--out tour/<chapter>`), so the tour never touches a
learner's checkpoints, data or pictures in the chapter folders. Each chapter's output streams to the
terminal as it runs. The report (tour/tour_report.md) has one row per chapter: whether
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
# What a learner should expect, said before anything runs. Quick: each script's --quick is meant to finish
# in under a minute (chapters 1-4, 7 and 8 measured 5-30 s per script on 2 cores at load average 4).
# Full: the sum of the minutes in the README's chapter table, measured on 2 free cores.
QUICK_MINUTES_PER_CHAPTER, FULL_MINUTES_IN_ALL = (1, 2), 75


def find_chapters(root: Path) -> list[Path]:
    """Numbered chapter folders ("1.video-encoder-decoder", ...) that have a train.py, in order."""
    found = [
        p for p in root.iterdir() if p.is_dir() and re.match(r"^\d+\.", p.name) and (p / "train.py").exists()
    ]
    return sorted(found, key=lambda p: int(p.name.split(".")[0]))


def run_script(chapter: Path, script: str, quick: bool, out: Path) -> tuple[int, float]:
    """Run ``script`` inside ``chapter`` with this Python and ``--out out``, streaming its output.
    Returns (exit code, seconds)."""
    cmd = [sys.executable, script] + (["--quick"] if quick else []) + ["--out", str(out)]
    print(f"\n=== {chapter.name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.time()
    code = subprocess.run(cmd, cwd=chapter).returncode
    return code, time.time() - t0


def key_metrics(report: dict, n: int = 4) -> str:
    """The metrics that have targets (else the first few), as 'name value' pairs."""
    metrics = report.get("metrics", {})
    names = [k for k in report.get("targets", {}) if k in metrics] or list(metrics)
    return ", ".join(f"{k} {metrics[k]:.3g}" for k in names[:n])


def tour(root: Path, quick: bool, only: set[int] | None, out: Path) -> tuple[list[dict], bool]:
    """Run the chapters, chapter N's files under out/<chapter N>; return (one result row per chapter,
    whether any script crashed)."""
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
        chapter_out = out / chapter.name  # its data/, checkpoints/ and outputs/: never the chapter's own
        metrics_file = chapter_out / "outputs" / "metrics.json"
        metrics_file.unlink(missing_ok=True)  # never report a stale result from an earlier run
        seconds = 0.0
        for script in ("train.py", "validate.py"):
            code, dt = run_script(chapter, script, quick, chapter_out)
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
        pictures = sorted((chapter_out / "outputs").glob("*.png")) + sorted(
            (chapter_out / "outputs").glob("*.gif")
        )
        row["pictures"] = " ".join(f"[{p.stem}]({p.relative_to(out).as_posix()})" for p in pictures)
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


def expected_time(n_chapters: int, n_all: int, full: bool) -> str:
    """One line saying how long the tour will take, before it starts."""
    if full:
        return (
            f"full tour of {n_chapters} chapter(s): every default train.py + validate.py, 3 to 17 minutes "
            f"each on 2 free cores (README table: about {FULL_MINUTES_IN_ALL} minutes for all {n_all}), "
            "more on a busy machine"
        )
    lo, hi = QUICK_MINUTES_PER_CHAPTER
    return (
        f"quick tour of {n_chapters} chapter(s): each chapter's train.py --quick + validate.py --quick, "
        f"{lo}-{hi} minutes each, {lo * n_chapters}-{hi * n_chapters} minutes in all "
        "(a smoke test: the numbers are not the lessons'; `--full` runs the real thing)"
    )


def main(argv=None) -> int:
    """Parse flags, run the tour, write the report; return the process exit code."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--full", action="store_true", help="the full default runs (the honest end-to-end check)"
    )
    mode.add_argument("--quick", action="store_true", help="each chapter's --quick run (the default)")
    p.add_argument("--only", type=parse_only, default=None, help="comma-separated chapter numbers, e.g. 1,3")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output root of the tour's runs and its report (default: tour/)",
    )
    p.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # tests run a fake tree
    args = p.parse_args(argv)
    quick = not args.full
    chapters = {int(c.name.split(".")[0]): c.name for c in find_chapters(args.root)}
    unknown = sorted((args.only or set()) - set(chapters))
    if unknown:
        names = ", ".join(f"{n} ({name})" for n, name in chapters.items())
        print(f"error: no chapter {', '.join(map(str, unknown))}; the chapters are {names}", file=sys.stderr)
        return 2
    print(expected_time(len(args.only or chapters), len(chapters), args.full), flush=True)
    out = (args.out or args.root / "tour").resolve()
    rows, crashed = tour(args.root, quick, args.only, out)
    if not rows:
        print("error: no chapter with a train.py found", file=sys.stderr)
        return 2
    report = out / "tour_report.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    write_report(rows, report, quick)
    print(f"\n{report.read_text()}\nwrote {report}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
