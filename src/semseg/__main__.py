"""`python -m semseg` is the `semseg` command."""

from semseg.cli import main

main()
