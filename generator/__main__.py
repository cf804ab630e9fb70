"""`python -m generator` is `pattern`."""

from .cli import main

main()
