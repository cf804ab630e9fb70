"""The metrics-adapter pattern in pods generated from it: a real Prometheus scrapes each
adapter beside its real app, and PromQL through the HTTP API returns the app's own figures."""

from __future__ import annotations

from typing import Any

import metrics_peers as mp
from metrics_peers import scraped, secret, unique
from pods import running, stack_documents
from support import CATALOGUE, wait_for


def stack(name: str, app: dict[str, Any], values: dict[str, Any],
          volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"app": app, "sidecars": [{"pattern": "metrics-adapter",
                                                      "values": values}]}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
            "metadata": {"name": name}, "spec": spec}


def test_redis_connected_clients_through_prometheus(prometheus: mp.Prometheus) -> None:
    name = unique("ma-redis")
    password = "s3cret #;'\"`$(x) p"
    app = {"image": mp.image("redis"),
           "command": ["sh", "-c", 'exec redis-server --bind 127.0.0.1 --port 6379 --save "" '
                       '--dir /tmp --requirepass "$(cat /etc/redis-auth/password)"'],
           "volumeMounts": [{"name": "auth", "mountPath": "/etc/redis-auth", "readOnly": True}]}
    docs = [secret(f"{name}-auth", {"password": password}),
            *stack_documents(stack(name, app, {"adapter": "redis",
                                               "credentialsSecret": f"{name}-auth"},
                                   [{"name": "auth", "secret": {"secretName": f"{name}-auth"}}]),
                             CATALOGUE)]
    with running(docs) as (pod,):
        scraped(prometheus, pod, 9121)
        query = f'redis_connected_clients{{pod="{name}"}}'
        before = wait_for("redis_connected_clients", lambda: prometheus.value(query), 30)
        # Three more clients that stay connected while Prometheus scrapes again (30 s: as long
        # as the wait below, so a loaded machine's late scrape still sees them).
        held = pod.exec(name, "sh", "-c",
                        'for i in 1 2 3; do (sleep 30 | REDISCLI_AUTH="$(cat '
                        '/etc/redis-auth/password)" redis-cli >/dev/null) & done; '
                        'sleep 0.5; REDISCLI_AUTH="$(cat /etc/redis-auth/password)" '
                        'redis-cli info clients | grep connected_clients', check=True)
        during = wait_for("three more clients in Prometheus",
                          lambda: (v := prometheus.value(query)) is not None
                             and v >= before + 3 and v, 30)
        assert prometheus.value(f'redis_up{{pod="{name}"}}') == 1.0
    assert "connected_clients" in held.stdout
    assert during >= before + 3


def test_nginx_accepts_move_with_requests(prometheus: mp.Prometheus) -> None:
    name = unique("ma-nginx")
    docs = stack_documents(stack(name, {"image": mp.image("nginx")}, {"adapter": "nginx"}),
                           CATALOGUE)
    with running(docs) as (pod,):
        scraped(prometheus, pod, 9113)
        query = f'nginx_connections_accepted{{pod="{name}"}}'
        before = wait_for("nginx_connections_accepted", lambda: prometheus.value(query), 30)
        pod.exec("metrics-adapter", "python3", "-c",
                 "import urllib.request as u\n"
                 "for _ in range(20): u.urlopen('http://127.0.0.1:8081/').read()")
        after = wait_for("20 more accepted connections",
                         lambda: (v := prometheus.value(query)) is not None
                            and v >= before + 20 and v, 30)
        assert prometheus.value(f'nginx_up{{pod="{name}"}}') == 1.0
    assert after >= before + 20


def test_logs_error_counter_equals_the_lines_written(prometheus: mp.Prometheus) -> None:
    name = unique("ma-logs")
    counts = {"error": 37, "warning": 5, "info": 250}
    writer = "; ".join(
        f"i=0; while [ $i -lt {n} ]; do echo \"{level} line $i\" >> /var/log/shop/{level}.log; "
        f"i=$((i+1)); done" for level, n in counts.items())
    app = {"image": "localhost/busybox:latest",
           "command": ["sh", "-c", f"sleep 2; {writer}; echo written; exec sleep 3600"]}
    docs = stack_documents(stack(name, app, {"adapter": "logs", "logDir": "/var/log/shop"}),
                           CATALOGUE)
    with running(docs) as (pod,):
        scraped(prometheus, pod, 3903)
        wait_for("the writer", lambda: "written" in pod.logs(name), 30)
        for level, n in counts.items():
            query = f'log_lines_total{{pod="{name}",level="{level}"}}'
            got = wait_for(f"{n} {level} lines in Prometheus",
                           lambda q=query, n=n: prometheus.value(q) == n, 30)
            assert got


# Passwords my.cnf and URLs would mangle unquoted: comment signs, quotes, spaces, @ : / & ?.
# mysqld_exporter 0.14 cannot take a '?' and postgres_exporter 0.11 no space (the adapter
# refuses those at start, see tests/images/metrics_adapter).
MYSQL_PASSWORD = "p@ss:/w&rd=1 #2; \"quoted\" 'single' $HOME"
POSTGRES_PASSWORD = "p@ss:/w?rd=1#2;\"quoted\"'single'$HOME\\x"


def test_mariadb_up_and_queries_move(prometheus: mp.Prometheus) -> None:
    name = unique("ma-mysql")
    socket = "--socket=/run/mysqld/mysqld.sock"
    app = {"image": mp.MARIADB_IMAGE,
           "command": ["sh", "-c", "mariadb-install-db --user=mysql --datadir=/var/lib/mysql "
                       "--skip-test-db > /dev/null && exec mariadbd --datadir=/var/lib/mysql "
                       f"{socket} --bind-address=127.0.0.1"],
           "securityContext": {"runAsUser": 999, "runAsGroup": 999},
           "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}]}
    values = {"adapter": "mysql", "credentialsSecret": f"{name}-db"}
    docs = [secret(f"{name}-db", {"username": "exporter", "password": MYSQL_PASSWORD}),
            *stack_documents(stack(name, app, values, [{"name": "data", "emptyDir": {}}]),
                             CATALOGUE)]
    with running(docs) as (pod,):
        wait_for("MariaDB", lambda: pod.exec(name, "mariadb-admin", socket, "ping",
                                                 check=False).returncode == 0, 60)
        sql_password = MYSQL_PASSWORD.replace("\\", "\\\\").replace("'", "''")
        pod.exec(name, "mariadb", socket, "-e",
                 f"CREATE USER 'exporter'@'127.0.0.1' IDENTIFIED BY '{sql_password}' "
                 "WITH MAX_USER_CONNECTIONS 3; "
                 "GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'exporter'@'127.0.0.1';")
        scraped(prometheus, pod, 9104)
        up = wait_for("mysql_up 1", lambda: prometheus.value(f'mysql_up{{pod="{name}"}}')
                         == 1.0, 30)
        query = f'mysql_global_status_commands_total{{pod="{name}",command="select"}}'
        before = wait_for("the select counter", lambda: prometheus.value(query), 30)
        pod.exec(name, "mariadb", socket, "-e", "; ".join(["SELECT 1"] * 50))
        after = wait_for("50 more selects", lambda: (v := prometheus.value(query)) is not None
                            and v >= before + 50 and v, 30)
    assert up and after >= before + 50


def test_postgres_up_and_commits_move(prometheus: mp.Prometheus) -> None:
    name = unique("ma-pg")
    app = {"image": mp.image("postgres"),
           "command": ["sh", "-c", "initdb -D /tmp/pg -U postgres --pwfile=/etc/pg-auth/password "
                       "--auth-host=scram-sha-256 --auth-local=trust > /dev/null && exec postgres "
                       "-D /tmp/pg -k /tmp -c listen_addresses=127.0.0.1"],
           "volumeMounts": [{"name": "auth", "mountPath": "/etc/pg-auth", "readOnly": True}]}
    values = {"adapter": "postgres", "credentialsSecret": f"{name}-db"}
    docs = [secret(f"{name}-db", {"username": "postgres", "password": POSTGRES_PASSWORD}),
            *stack_documents(stack(name, app, values,
                                   [{"name": "auth", "secret": {"secretName": f"{name}-db"}}]),
                             CATALOGUE)]
    with running(docs) as (pod,):
        scraped(prometheus, pod, 9187)
        up = wait_for("pg_up 1", lambda: prometheus.value(f'pg_up{{pod="{name}"}}') == 1.0, 60)
        query = f'pg_stat_database_xact_commit{{pod="{name}",datname="postgres"}}'
        before = wait_for("the commit counter", lambda: prometheus.value(query), 30)
        pod.exec(name, "sh", "-c", "for i in $(seq 50); do echo 'SELECT 1;'; done | "
                 "psql -h /tmp -U postgres -q -o /dev/null")
        after = wait_for("50 more commits", lambda: (v := prometheus.value(query)) is not None
                            and v >= before + 50 and v, 30)
    assert up and after >= before + 50
