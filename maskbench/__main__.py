"""`python -m maskbench ...` (also the entry point for `torchrun -m maskbench`)."""

from maskbench.cli import main

main()
