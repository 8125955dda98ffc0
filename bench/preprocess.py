"""Preprocessing throughput with 1 and 2 workers, and its peak memory for N and 4N clips.

Raw clips in CREMA-D's layout are generated once (4N clips; the first N form the smaller set, by
symbolic links). Each preprocess run happens in a fresh interpreter, so that its peak resident
memory (getrusage ru_maxrss of the process, and of its worker processes) is its own; runs
interleave. Settings are the reference's (22,050 Hz, 3 s, n_fft 512, hop 353 -> 1x257x188 float32;
one 224x224 RGB frame): about 340 KB of output per clip, so results held in RAM would show.

Each run is timed in two parts: the start-up, i.e. librosa's first spectrogram (the import of
librosa and SciPy, about 2 s, paid once per run by any worker count: workers fork after it), and
the clips, i.e. everything the stage does after that (listing, splitting, the pool, decoding,
writing). clips/s is the clips' part; the whole stage is shown beside it.
Targets: 2 workers >= 1.7x the clips/s of 1; peak memory grows < 20% from N to 4N clips.

    python bench/preprocess.py [--quick] [--clips N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import in_fresh_process, machine, median, peak_rss_mib, recorded, table

SPEEDUP_TARGET = 1.7
GROWTH_TARGET = 0.20
CLIPS_PER_ACTOR = 6  # one sentence: one clip per emotion


def child(job: dict) -> None:
    """Preprocess one raw folder and print elapsed time and peak memory as JSON."""
    from g2d.datasets import cremad

    params = cremad.Params(
        video=cremad.VideoParams(fps=1.0, frames=1, size=224),
        split=cremad.SplitParams(val_fraction=0.2, test_fraction=0.2),
    )
    start = time.perf_counter()
    cremad.warm_up(params.audio)  # what preprocess does first; done here to time it apart
    startup = time.perf_counter() - start
    start = time.perf_counter()
    report = cremad.preprocess(
        "bench", job["raw"], params, job["out"], job["out"] + ".report.json", workers=job["workers"]
    )
    elapsed = time.perf_counter() - start
    print(
        json.dumps({"startup": startup, "seconds": elapsed, "clips": sum(report["counts"].values()), **peak_rss_mib()})
    )


def link_subset(raw: Path, out: Path, actors: int) -> Path:
    """A raw folder holding the first `actors` actors' clips of `raw`, as symbolic links."""
    from g2d.datasets.demo import FIRST_ACTOR

    for sub in ("AudioWAV", "VideoFlash"):
        (out / sub).mkdir(parents=True)
        for f in sorted((raw / sub).iterdir()):
            if int(f.name.split("_")[0]) < FIRST_ACTOR + actors:
                (out / sub / f.name).symlink_to(f)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 48 clips instead of 240, one repetition")
    parser.add_argument("--clips", type=int, default=None, help="N, rounded up to a multiple of 6")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from g2d.datasets import demo

    n = args.clips or (48 if args.quick else 240)
    actors = -(-n // CLIPS_PER_ACTOR)
    reps = 1 if args.quick else 2
    print(f"machine: {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="g2d-bench-") as tmp_name:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        demo.generate(
            tmp / "raw4n",
            demo.Params(
                actors=4 * actors,
                sentences=1,
                sample_rate=16000,
                min_duration=2.0,
                max_duration=3.0,
                fps=10.0,
                frame_size=96,
            ),
        )
        print(
            f"generated {4 * actors * CLIPS_PER_ACTOR} raw clips in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
        raws = {"N": link_subset(tmp / "raw4n", tmp / "rawn", actors), "4N": tmp / "raw4n"}
        runs = [(size, workers) for size in ("N", "4N") for workers in (1, 2)]
        results: dict[tuple[str, int], list[dict]] = {run: [] for run in runs}
        for r in range(reps):
            for size, workers in runs[r % len(runs) :] + runs[: r % len(runs)]:
                out = str(tmp / f"{size}-{workers}-{r}.h5")
                results[(size, workers)].append(
                    in_fresh_process(Path(__file__), {"raw": str(raws[size]), "out": out, "workers": workers})
                )
                Path(out).unlink()
        rows = []
        for size, workers in runs:
            res = results[(size, workers)]
            clips = res[0]["clips"]
            startup, seconds = median([x["startup"] for x in res]), median([x["seconds"] for x in res])
            rows.append(
                [
                    size,
                    clips,
                    workers,
                    startup,
                    seconds,
                    clips / seconds,
                    startup + seconds,
                    clips / (startup + seconds),
                    max(x["self"] for x in res),
                    max(x["children"] for x in res) if workers > 1 else "-",
                ]
            )
        print(
            table(
                [
                    "clips",
                    "clips written",
                    "workers",
                    "start-up (s)",
                    "clips part (s)",
                    "clips/s",
                    "whole stage (s)",
                    "whole stage clips/s",
                    "peak RSS main process (MiB)",
                    "peak RSS of a worker (MiB)",
                ],
                rows,
            )
        )
        by = {(r[0], r[2]): r for r in rows}
        speedup = {size: by[(size, 2)][5] / by[(size, 1)][5] for size in ("N", "4N")}
        whole = {size: by[(size, 2)][7] / by[(size, 1)][7] for size in ("N", "4N")}
        growth = {w: by[("4N", w)][8] / by[("N", w)][8] - 1 for w in (1, 2)}
        print()
        print(
            table(
                ["figure", "value", "target", "met"],
                [
                    *[
                        [
                            f"speed-up in clips/s, 2 workers vs 1, {size} clips",
                            speedup[size],
                            f">= {SPEEDUP_TARGET}",
                            "yes" if speedup[size] >= SPEEDUP_TARGET else "no",
                        ]
                        for size in ("N", "4N")
                    ],
                    *[
                        [f"whole stage incl. start-up, 2 workers vs 1, {size} clips", whole[size], "(context)", ""]
                        for size in ("N", "4N")
                    ],
                    [
                        "peak RSS growth N -> 4N, 1 worker",
                        f"{100 * growth[1]:+.1f}%",
                        f"< {100 * GROWTH_TARGET:.0f}%",
                        "yes" if growth[1] < GROWTH_TARGET else "no",
                    ],
                    [
                        "peak RSS growth N -> 4N, 2 workers (main)",
                        f"{100 * growth[2]:+.1f}%",
                        f"< {100 * GROWTH_TARGET:.0f}%",
                        "yes" if growth[2] < GROWTH_TARGET else "no",
                    ],
                ],
            )
        )


if __name__ == "__main__":
    with recorded("preprocess"):
        main()
