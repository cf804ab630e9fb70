"""metrics-adapter: run one of Debian's Prometheus exporters beside an unchanged app."""
