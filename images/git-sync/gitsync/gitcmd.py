"""Run git with a private, credential-aware environment."""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from gitsync.config import Config, redact_url
from gitsync.log import Logger

# Reads the token file at the moment git asks, so a rotated Secret applies to the next request
# without the token ever appearing on a command line or in our own memory.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; '
    'echo "username=$GITSYNC_CRED_USERNAME"; '
    "printf 'password=%s\\n' \"$(cat \"$GITSYNC_CRED_PASSWORD_FILE\")\"; }; f"
)

_UNREACHABLE = (
    "could not resolve host", "connection refused", "unable to connect", "timed out",
    "unable to look up", "network is unreachable", "no route to host", "connection reset",
    "could not read from remote repository", "failed to connect",
)
_AUTH = (
    "authentication failed", "could not read username", "could not read password",
    "permission denied (publickey", "invalid username or password", "returned error: 401",
    "returned error: 403",
)


class GitError(Exception):
    """A failed git step; ``kind`` is a stable word for status and metrics."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def classify(stderr: str) -> str:
    low = stderr.lower()
    if "host key verification failed" in low:
        return "host_key_rejected"
    if any(s in low for s in _AUTH):
        return "auth_failed"
    if any(s in low for s in _UNREACHABLE):
        return "remote_unreachable"
    return "git_failed"


def summarize(stderr: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return redact_url(" | ".join(lines[-3:]))[:limit] or "no output"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class GitRunner:
    def __init__(self, cfg: Config, logger: Logger, private_dir: Path) -> None:
        self._cfg = cfg
        self._log = logger
        self._dir = private_dir
        self._home = private_dir / "home"
        self._home.mkdir(mode=0o700, exist_ok=True)
        # git 2.39 honours safe.directory only from global/system files when it starts
        # upload-pack for a file:// remote owned by another uid (a hostPath repository).
        (self._home / ".gitconfig").write_text("[safe]\n\tdirectory = *\n")
        self._proc: subprocess.Popen[bytes] | None = None
        self._base_env = self._build_base_env()

    def _build_base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITSYNC_"))}
        env.update(HOME=str(self._home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0",
                   LC_ALL="C", GIT_SSH_VARIANT="ssh")
        config = [
            ("safe.directory", "*"),
            ("credential.helper", ""),
            ("gc.autoDetach", "false"),
            ("advice.detachedHead", "false"),
            ("init.defaultBranch", "main"),
            ("init.templateDir", ""),  # no sample hooks (the image stages no templates)
        ]
        if self._cfg.username:
            config.append(("credential.helper", _CREDENTIAL_HELPER))
            env["GITSYNC_CRED_USERNAME"] = self._cfg.username
            env["GITSYNC_CRED_PASSWORD_FILE"] = str(self._cfg.password_file or "/dev/null")
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        env.update(self._nss_wrapper_env())
        return env

    def _nss_wrapper_env(self) -> dict[str, str]:
        """ssh exits when the uid has no passwd entry (any runAsUser); fake one via nss_wrapper."""
        try:
            pwd.getpwuid(os.getuid())
            return {}
        except KeyError:
            pass
        libs = glob.glob("/usr/lib/*/libnss_wrapper.so") + glob.glob("/usr/lib/libnss_wrapper.so")
        if not libs:
            self._log.warn("no_passwd_entry", uid=os.getuid(),
                           hint="ssh remotes need libnss-wrapper or a passwd entry")
            return {}
        uid, gid = os.getuid(), os.getgid()
        passwd, group = self._dir / "passwd", self._dir / "group"
        passwd.write_text(f"git-sync:x:{uid}:{gid}:git-sync:{self._home}:/bin/sh\n")
        group.write_text(f"git-sync:x:{gid}:\n")
        return {"LD_PRELOAD": libs[0], "NSS_WRAPPER_PASSWD": str(passwd),
                "NSS_WRAPPER_GROUP": str(group)}

    def _ssh_command(self) -> str | None:
        cfg = self._cfg
        if not (cfg.ssh_key_file or cfg.known_hosts_file or not cfg.ssh_host_key_check):
            return None
        opts = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        if cfg.ssh_key_file:
            try:
                key = cfg.ssh_key_file.read_bytes()
            except OSError as exc:
                raise GitError("auth_config",
                               f"cannot read --ssh-key-file {cfg.ssh_key_file}: {exc.strerror}"
                               ) from None
            # A private 0600 copy: Secret mounts are often 0644 or group-readable (fsGroup),
            # which ssh rejects, and owned by a uid other than ours.
            copy = self._dir / "ssh-key"
            _write_private(copy, key if key.endswith(b"\n") else key + b"\n")
            opts += ["-i", str(copy), "-o", "IdentitiesOnly=yes"]
        if cfg.ssh_host_key_check:
            known = cfg.known_hosts_file or self._home / ".ssh" / "known_hosts"
            opts += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
        else:
            opts += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                     "-o", "LogLevel=ERROR"]
        return " ".join(shlex.quote(o) for o in opts)

    def local_env(self) -> dict[str, str]:
        """Environment for commands that never contact the remote."""
        return dict(self._base_env)

    def sync_env(self) -> dict[str, str]:
        """Environment for one sync; credentials are re-read here so rotation applies."""
        cfg = self._cfg
        if cfg.password_file:
            try:
                if not cfg.password_file.read_text().strip():
                    raise GitError("auth_config", f"--password-file {cfg.password_file} is empty")
            except OSError as exc:
                raise GitError("auth_config",
                               f"cannot read --password-file {cfg.password_file}: {exc.strerror}"
                               ) from None
        env = dict(self._base_env)
        ssh = self._ssh_command()
        if ssh:
            env["GIT_SSH_COMMAND"] = ssh
        return env

    def run(self, args: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> str:
        argv = ["git", *args]
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._proc = proc
        try:
            out, err = proc.communicate(timeout=self._cfg.sync_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise GitError("timeout", f"git {args[0]} exceeded --sync-timeout "
                           f"{self._cfg.sync_timeout_s:g}s") from None
        finally:
            self._proc = None
        stderr = err.decode(errors="replace")
        shown = args[2:5] if args[0] == "--git-dir" else args[:3]
        self._log.debug("git", cmd=" ".join(shown), rc=proc.returncode,
                        ms=round((time.monotonic() - started) * 1000, 1))
        if proc.returncode != 0:
            raise GitError(classify(stderr), f"git {args[0]} failed: {summarize(stderr)}")
        return out.decode(errors="replace")

    def kill_current(self) -> None:
        """Called from the SIGTERM handler: stop a long fetch so shutdown takes seconds."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
