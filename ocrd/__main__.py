"""`python -m ocrd`: the same as the `ocrd` command."""

from ocrd.cli import main

main()
