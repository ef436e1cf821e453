"""`comethook payloads`: list the catalog, show the exact body `send` would send."""

from __future__ import annotations

from comethook_cli.cometchat.payloads import BuildOptions


def list_(json_out: bool) -> None:
    """`comethook payloads list`."""
    from comethook_cli.cometchat.payloads import catalog
    from comethook_cli.outputs.views import view

    view(json_out).catalog(catalog())


def show(trigger: str, legacy: bool, options: BuildOptions) -> None:
    """`comethook payloads show TRIGGER`."""
    from comethook_cli.cometchat.payloads import build, find_template
    from comethook_cli.outputs.terminal import Renderer

    template = find_template(trigger, legacy)
    renderer = Renderer()
    if template.note:
        # stderr, so stdout stays the exact body `send` would send.
        renderer.note(template.note)
    renderer.document(build(template, options))
