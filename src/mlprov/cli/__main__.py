"""`python -m mlprov.cli`: the `mlprov` command without its console script."""

from mlprov.cli import main

if __name__ == "__main__":
    main()
