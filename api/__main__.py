"""`python -m api`, and the `fedsync` console script's entry (``main``).

The console script runs as a file, so a worker process spawned by the CLI (``infrastructure/check_pool.py``)
runs it again before it can work: it holds nothing but ``main``, which imports the CLI only when called (the
CLI's imports are ~0.6 s of a worker's start, several pages of a catch-up checked in the main process
meanwhile)."""


def main() -> None:
    from api.cli import main as cli

    cli()


if __name__ == "__main__":  # not when a spawned worker process imports it
    main()
