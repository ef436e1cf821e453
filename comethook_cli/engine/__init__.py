"""Everything that does I/O: the listener, forwarder, sender, checks, tunnel and history, joined by the hub and the session.

Never prints, never imports typer or rich: results go back as values, errors as ComethookError.
"""
