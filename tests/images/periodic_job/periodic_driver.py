"""A job for images/_common/periodic_job.py as an image runs it (`run_every`, signals and
all): each run appends a line to FOLDER/runs, and fails while FOLDER/fail exists (its text is
the error). Run: periodic_driver.py HOST:PORT FOLDER."""

from __future__ import annotations

import sys
from pathlib import Path

import periodic_job as job


def main(bind: str, folder: Path) -> int:
    status = job.Status(max_failures=2)

    def one_run() -> job.Result:
        with (folder / "runs").open("a") as runs:
            runs.write("run\n")
        fail = folder / "fail"
        if fail.exists():
            return job.Result(False, fail.read_text())
        return job.Result(True, counts={"rotations": 1})

    return job.run_every(3600, one_run, status, bind, "toy_job",
                         lambda line: print(line, file=sys.stderr, flush=True),
                         run_at_start=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
