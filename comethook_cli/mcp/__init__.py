"""`comethook mcp`: an adapter beside the CLI and the inspector, for coding agents (the Model Context Protocol).

It needs the optional `mcp` extra (`pip install 'comethook[mcp]'`); nothing else in comethook imports it.
"""
