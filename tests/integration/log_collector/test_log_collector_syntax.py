"""syslog-ng itself, in the log-collector image, accepts every configuration the pattern
renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lc_support import BASE, HOSTILE, render
from pods import cli

from generator import images


def test_syslog_ng_parses_every_rendering(tmp_path: Path) -> None:
    """syslog-ng 3.38 checks each destination and mode, with hostile values that the schema
    accepts in every string it allows them in."""
    (image,) = images.build(["log-collector"], registry=None, tag=None, push=False, quiet=True,
                            say=print)
    regex = r'(?<level>[a-z"$]+)"\); \}; destination d_pwn \{ file\("/tmp/pwn"\); \}; #'
    cases: dict[str, dict[str, Any]] = {
        "default": {}, "drop": {"whenFull": "drop"}, "tls": {"tls": True, "tlsVerify": False},
        "http": {**BASE, "url": "https://h/x?a=$b;c=}{"},
        "es": {**BASE, "destination": "elasticsearch", "url": "http://es:9200/app-logs/_bulk",
               "whenFull": "drop"},
        "hostile": {**BASE, "levelRegex": regex, "multilineStart": regex,
                    "fields": {"note": HOSTILE[0] + HOSTILE[2] + HOSTILE[3]},
                    "url": "http://h/);};destination{d}#$(env)${MSG}"},
    }
    for name, values in cases.items():
        conf, _ = render(values)
        (tmp_path / f"{name}.conf").write_text(conf)
    tmp_path.chmod(0o755)
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    script = ('rc=0; for f in /c/*.conf; do out=$(syslog-ng --syntax-only --no-caps -f "$f" 2>&1)'
              ' || { echo "FAIL $f: $out"; rc=1; }; done; exit $rc')
    result = cli("run", "--rm", "--user", "23456", "--read-only", "-v", f"{tmp_path}:/c:ro",
                 "-e", "LOG_COLLECTOR_POD=p", "--entrypoint", "sh", image, "-c", script)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
