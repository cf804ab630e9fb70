"""sidecar-patterns: a catalogue of Kubernetes sidecar patterns and the `pattern` generator."""

__version__ = "0.1.0"
