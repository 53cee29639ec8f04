"""``python -m ladder.cli``: the same as the ``ladder`` console script."""

from ladder.cli import main

main()
