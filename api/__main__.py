"""`python -m api`: the CLI without the console script."""

from api.cli import main

main()
