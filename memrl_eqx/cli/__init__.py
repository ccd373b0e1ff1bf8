"""The `memrl-eqx` command: train, resume, evaluate and plot runs; list
environments. `main(argv)` is its entry point."""

from ._main import main as main
