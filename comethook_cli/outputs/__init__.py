"""How records leave the process: the NDJSON wire format, the terminal display, and the views that choose between them."""
