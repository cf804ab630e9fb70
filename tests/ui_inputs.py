"""What the `pattern ui` tests type into its forms (tests/unit/test_ui.py, tests/browser)."""

from __future__ import annotations

# The MariaDB + ssh pod of patterns/ssh/examples/database.stack.yaml, as the composer's fields.
DATABASE_APP = {
    "name": "database",
    "app_image": "localhost/sidecar-patterns-examples/mariadb:10.11-bookworm",
    "app_command": "sh -c 'exec mariadbd --datadir=/var/lib/mysql --bind-address=127.0.0.1'",
}
DATABASE_SSH = {"user": "mysql", "uid": "999", "gid": "999", "dataPath": "/var/lib/mysql",
                "authorizedKeysSecret": "database-ssh-keys",
                "hostKeysSecret": "database-ssh-host-keys"}
DATABASE_CLAIM = "database-data"

# A Deployment as a team keeps it (a comment, flow style), to inject into.
DEPLOYMENT = """\
# the shop, as the team keeps it
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
        - name: web
          image: nginx:1.27-bookworm  # pinned
          ports: [{containerPort: 80}]
"""
