"""Documents per second of `pattern inject` over a 1,000-document stream, beside the floor.

The floor is a plain round-trip load and dump of the same stream with the same YAML library
(ruamel.yaml), in the same run: inject cannot be faster than reading and writing the text.

    python benchmarks/inject_bench.py [--documents 1000] [--repeat 3] [--with seed-loader ...]

The stream cycles the realistic manifests of tests/fixtures/manifests (7 of every 10 documents
bear pods); the sidecars come from the fixture catalogue (file-server by default).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.catalogue import Catalogue  # noqa: E402
from generator.inject import inject  # noqa: E402
from generator.manifests import parse_stream  # noqa: E402
from generator.sidecars import SidecarOptions, parse_with  # noqa: E402
from generator.values import parse_assignment  # noqa: E402

MANIFESTS = ROOT / "tests" / "fixtures" / "manifests"
CATALOGUE = ROOT / "tests" / "fixtures" / "patterns"


def stream(count: int) -> str:
    """`count` documents cycled from the realistic fixtures, every object named uniquely."""
    documents = [part for path in sorted(MANIFESTS.glob("*.yaml"))
                 for part in re.split(r"^---\n", path.read_text(), flags=re.MULTILINE)
                 if part.strip()]
    made = []
    for index in range(count):
        text = documents[index % len(documents)]
        made.append(re.sub(r"(metadata:\n +name: )(\S+)", rf"\g<1>\g<2>-{index}", text))
    return "---\n".join(made)


def floor(text: str) -> str:
    yaml = YAML(typ="rt")
    out = io.StringIO()
    yaml.dump_all(list(yaml.load_all(text)), out)
    return out.getvalue()


def injector(patterns: list[str]) -> Callable[[str], str]:
    seed = ("seed-loader.seed=hello",) if "seed-loader" in patterns else ()  # its required value
    options = SidecarOptions(requests=tuple(parse_with(p) for p in patterns),
                             assignments=tuple(parse_assignment(a) for a in seed))
    catalogue = Catalogue(CATALOGUE)

    def injected(text: str) -> str:
        return inject([parse_stream(text, "bench.yaml")], options, catalogue).text

    return injected


def best(work: Callable[[str], str], text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with", dest="patterns", action="append",
                        help="a fixture pattern to inject (repeatable; default file-server)")
    args = parser.parse_args()
    patterns = args.patterns or ["file-server"]
    injected = injector(patterns)
    text = stream(args.documents)
    injected(stream(20))  # warm caches and imports (templates, schemas) out of the timing
    load_dump = best(floor, text, args.repeat)
    ours = best(injected, text, args.repeat)
    count = args.documents
    print(f"stream: {count} documents, {len(text.splitlines())} lines")
    print(f"ruamel load+dump: {count / load_dump:8.1f} documents/s ({load_dump:.2f} s)")
    print(f"pattern inject:   {count / ours:8.1f} documents/s ({ours:.2f} s), "
          f"--with {' --with '.join(patterns)}")
    print(f"inject / floor:   {ours / load_dump:.2f}x the time (goal: at most 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
