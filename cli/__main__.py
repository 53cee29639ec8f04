"""``python -m cli``: the same as the ``ladder`` console script."""

from cli import main

main()
