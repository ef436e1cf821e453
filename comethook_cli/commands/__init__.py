"""The command layer: one module per command (its options, its body and its exit code), and the pieces they share
(app.py: the Typer classes and the error funnel; options.py: shared option types and flag helpers; config.py and
project.py: the project file; completion.py). comethook_cli/cli/__init__.py is the root command that loads them.
"""
