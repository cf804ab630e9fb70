"""The pattern's copy-paste examples run as written (with the Secret and ConfigMap their
comments say to create), and Prometheus gets their metrics."""

from __future__ import annotations

from typing import Any

import metrics_peers as mp
import yaml
from metrics_peers import scraped, unique
from pods import running, stack_documents
from support import CATALOGUE, wait_for

EXAMPLES = CATALOGUE / "metrics-adapter" / "examples"
README = CATALOGUE / "metrics-adapter" / "README.md"


def example(file: str, name: str) -> dict[str, Any]:
    stack: dict[str, Any] = yaml.safe_load((EXAMPLES / file).read_text())
    stack["metadata"]["name"] = name
    return stack


def readme_secret() -> dict[str, Any]:
    """The Secret of the README's "try it here" block, as written there."""
    block = README.read_text().split("cat > secret.yaml <<'YAML'\n", 1)[1].split("YAML\n")[0]
    loaded: dict[str, Any] = yaml.safe_load(block)
    return loaded


def test_mariadb_example_with_the_readme_secret(prometheus: mp.Prometheus) -> None:
    name = unique("ma-ex-db")
    docs = [readme_secret(), *stack_documents(example("mariadb.stack.yaml", name), CATALOGUE)]
    with running(docs) as (pod,):
        scraped(prometheus, pod, 9104)
        up = wait_for("mysql_up 1 from the example",
                      lambda: prometheus.value(f'mysql_up{{pod="{name}"}}') == 1.0, 60)
        # The monitoring user has only what the exporter needs.
        grants = pod.exec(name, "mariadb", "--socket=/run/mysqld/mysqld.sock", "-N", "-e",
                          "SHOW GRANTS FOR 'exporter'@'127.0.0.1'").stdout
    assert up
    # MariaDB 10.11 spells REPLICATION CLIENT as BINLOG MONITOR.
    assert "GRANT SELECT, PROCESS, BINLOG MONITOR ON *.* TO `exporter`@`127.0.0.1`" in grants


def test_log_levels_example_with_its_mtail_program(prometheus: mp.Prometheus) -> None:
    name = unique("ma-ex-logs")
    program = ("counter checkout_failures_total\n/checkout failed/ {\n"
               "  checkout_failures_total++\n}\n")
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop-mtail"},
                  "data": {"checkout.mtail": program}}
    docs = [config_map, *stack_documents(example("log-levels.stack.yaml", name), CATALOGUE)]
    with running(docs) as (pod,):
        scraped(prometheus, pod, 3903)
        query = f'checkout_failures_total{{pod="{name}"}}'
        failures = wait_for("3 failed checkouts counted",
                            lambda: (v := prometheus.value(query)) is not None and v >= 3 and v, 30)
        errors = prometheus.value(f'log_lines_total{{pod="{name}",level="error"}}')
        lines = pod.exec(name, "wc", "-l", "/var/log/shop/error.log").stdout.split()[0]
    # Every error line is a failed checkout; Prometheus saw a moment of the file's growth.
    assert errors is not None and 3 <= errors <= int(lines)
    assert failures >= 3
