"""`python -m api`: the CLI without the console script."""

from api.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports it (infrastructure/check_pool.py)
    main()
