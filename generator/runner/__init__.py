"""Run generated pods for real on podman, faithfully where podman 4.3 is not.

podman `kube play` ignores readiness/startup probes and lifecycle hooks, and hangs on native
sidecars. So the runner plays a translated pod without starting it, then starts containers
itself in Kubernetes order (init containers and native sidecars first, each waited for), runs
postStart/preStop hooks, and checks probes from the host as the kubelet would.
"""
