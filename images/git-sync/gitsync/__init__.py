"""git-sync: keep a git ref checked out on a shared volume and publish each commit atomically."""

__version__ = "0.1.0"
