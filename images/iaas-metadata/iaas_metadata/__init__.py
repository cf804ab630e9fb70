"""iaas-metadata: one local, normalized instance-metadata API on every cloud."""

__version__ = "0.1.1"
