"""``python -m commq.entrypoints.cli``: the same as the ``commq`` script."""

from commq.entrypoints.cli import main

main()
