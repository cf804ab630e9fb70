"""Wire config, providers, cache and server together; stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from iaas_metadata import config as cfg
from iaas_metadata.cache import MetadataCache
from iaas_metadata.providers import (
    Aliyun,
    Aws,
    Azure,
    Gcp,
    OpenStack,
    Provider,
    QingCloud,
)
from iaas_metadata.server import Api, ApiServer
from iaas_metadata.upstream import Upstream

log = logging.getLogger("iaas_metadata")


def make_provider(name: str, config: cfg.Config, timeout: float) -> Provider:
    upstream = Upstream(config.endpoints[name], timeout=timeout, retries=config.retries)
    if name == "aws":
        return Aws(upstream, imdsv1=config.aws_imdsv1, token_ttl=config.token_ttl)
    if name == "aliyun":
        return Aliyun(upstream, token_ttl=config.token_ttl)
    if name == "gcp":
        return Gcp(upstream)
    if name == "azure":
        return Azure(upstream)
    if name == "openstack":
        return OpenStack(upstream)
    return QingCloud(upstream, config.qingcloud_instance_id, config.qingcloud_metadata_file)


def candidates(config: cfg.Config) -> list[Provider]:
    if config.provider != "auto":
        return [make_provider(config.provider, config, config.timeout)]
    # Probes are quick (probe timeout, no retries) so absent clouds cost little; the
    # detected provider is then rebuilt with the normal timeout and retries.
    quick = cfg.Config(**{**vars(config), "retries": 0})
    return [make_provider(name, quick, config.probe_timeout) for name in cfg.AUTO_ORDER]


def fetch_once(cache: MetadataCache, stopping: threading.Event, max_delay: float) -> int:
    """Retry (0.5 s doubling up to `max_delay`) until one snapshot is fetched; print it.

    This is what an init container runs on clusters without native sidecars: the app must not
    start before the metadata service has answered once.
    """
    delay = 0.5
    while not cache.refresh_once():
        if stopping.wait(delay):
            return 1
        delay = min(delay * 2, max(max_delay, 0.5))
    snapshot, _, _ = cache.read()
    assert snapshot is not None  # refresh_once() stored it
    print(json.dumps({**snapshot.document(), "provider_detection": cache.detection.reason}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    config = cfg.parse(argv)
    fixed = config.provider != "auto"
    cache = MetadataCache(candidates(config), config.ttl,
                          config.fallbacks, fixed,
                          rebuild=lambda name: make_provider(name, config, config.timeout))
    stopping = threading.Event()
    if config.once:
        signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
        signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
        return fetch_once(cache, stopping, config.ttl)
    server = ApiServer((config.listen_host, config.listen_port), Api(config, cache))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            cache.stop()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cache.start()
    log.info("serving on %s:%d, provider=%s, ttl=%ss, ec2-dialect=%s", config.listen_host,
             config.listen_port, config.provider, config.ttl, config.ec2_dialect)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    log.info("stopped")
    return 0
