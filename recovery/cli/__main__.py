"""``python -m recovery.cli``: the ``recovery`` command."""

from recovery.cli import main

main()
