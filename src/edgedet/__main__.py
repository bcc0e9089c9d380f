"""`python -m edgedet ...`: the same as the `edgedet` console script."""

from edgedet.cli import run_cli

if __name__ == "__main__":
    run_cli()
