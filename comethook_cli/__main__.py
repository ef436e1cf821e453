"""python -m comethook_cli."""

from comethook_cli.cli import main

main()
