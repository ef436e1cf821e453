"""comethook: a webhook development tool for CometChat."""

__version__ = "0.1.0"
