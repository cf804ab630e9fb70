"""Run generated pods for real on podman or Docker, faithfully where neither engine is.

podman `kube play` ignores readiness/startup probes and lifecycle hooks and hangs on native
sidecars; Docker has no pods at all. So the runner creates a translated pod without starting
it (podman: `kube play --start=false`; Docker: an infra container and containers joined to it),
then starts containers itself in Kubernetes order (init containers and native sidecars first,
each waited for), runs postStart/preStop hooks, and checks probes from the host as the kubelet
would. Engines sit behind `runtime.Runtime`; `engines` picks one.
"""
