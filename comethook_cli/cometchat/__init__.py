"""What comethook knows about CometChat: the payload catalog, reading a delivery, the verdict, answering rules.

No network, no terminal, no files but the templates this package ships.
"""
