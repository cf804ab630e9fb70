"""The git-sync image follows the image conventions: labels, numeric non-root user, and a run
as an arbitrary uid on a read-only root filesystem with every capability dropped."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from gitsync_podkit import PATTERN
from gitsync_testkit import Upstream
from pods import cli

pytestmark = pytest.mark.integration
IMAGE_DIR = PATTERN.parents[1] / "images" / "git-sync"


def image_reference() -> str:
    return f"ghcr.io/sidecar-patterns/git-sync:{(IMAGE_DIR / 'VERSION').read_text().strip()}"


def test_labels_user_and_help(gitsync_images: None) -> None:
    info = json.loads(cli("image", "inspect", image_reference()).stdout)[0]
    labels = info["Config"]["Labels"]
    assert info["Config"]["User"] == "65532:65532"
    assert labels["org.opencontainers.image.version"] == (IMAGE_DIR / "VERSION").read_text().strip()
    assert labels["org.opencontainers.image.title"] == "git-sync"
    help_text = cli("run", "--rm", image_reference(), "--help").stdout
    assert "GITSYNC_TRIGGER_TOKEN_FILE" in help_text and "GITSYNC_EXECHOOK_ARG" in help_text


def test_one_time_sync_as_an_arbitrary_uid_on_a_read_only_root(tmp_path: Path,
                                                               gitsync_images: None) -> None:
    upstream = Upstream(tmp_path / "srv")
    upstream.base.mkdir()
    upstream.create()
    upstream.commit_and_push()
    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o777)  # an emptyDir is writable by the pod's runAsUser
    name = f"gitsync-uid-{uuid.uuid4().hex[:8]}"
    try:
        done = cli("run", "--name", name, "--user", "23456:23456", "--read-only",
                      "--tmpfs", "/tmp", "--cap-drop", "ALL", "--network", "none",
                      "-v", f"{upstream.base}:/srv:ro", "-v", f"{volume}:/git",
                      image_reference(), "--repo", "file:///srv/app.git", "--root", "/git/code",
                      "--one-time", "--http-bind", "off")
        assert done.returncode == 0, done.stderr
        assert (volume / "code" / "current" / "VERSION").read_text() == "v1\n"
        assert "uid=23456" in done.stderr and "event=published" in done.stderr
    finally:
        cli("rm", "-f", "-t", "0", name)
