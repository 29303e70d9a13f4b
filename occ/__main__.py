"""``python -m occ``: the ``occ`` command line."""

from occ.cli import main

main()
