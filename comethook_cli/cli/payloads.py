"""`comethook payloads list|show|save|diff`: list the catalog and the project's fixtures, show the exact body `send`
would send, save a stored delivery as a project fixture, and compare live deliveries with the catalog.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import completion
from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import (
    Adds,
    Fixtures,
    JsonOut,
    Legacy,
    MessageType,
    PayloadAppId,
    PayloadRegion,
    Receiver,
    Sender,
    Sets,
    Text,
    ToGroup,
    Unsets,
    WebhookId,
    build_options,
    fixtures_directory,
    project_fixtures,
)
from comethook_cli.cometchat.payloads import BuildOptions
from comethook_cli.engine.config import default

app = App()  # what the root group takes this command from
payloads_app = App(
    help="List, show and save CometChat payloads (catalog and project fixtures); diff live deliveries.", no_args_is_help=True
)
app.add_typer(payloads_app, name="payloads")
#: What `payloads diff` says when the history holds no live delivery.
HOW_TO_COLLECT = (
    "Run `comethook listen`, paste its public URL in the CometChat Dashboard (Settings → Webhooks), and use your app "
    "(send a message, react, join a group): each delivery CometChat makes is stored. Deliveries from send, replay, "
    "check and emulate are left out."
)


@payloads_app.command("list")
@funnel
def payloads_list(json_out: JsonOut = False, fixtures: Fixtures = None) -> None:
    """List every canned payload and project fixture: trigger, generation, family, description."""
    from comethook_cli.cometchat.payloads import catalog, trigger_names
    from comethook_cli.outputs.views import view

    found = project_fixtures(fixtures)
    known = set(trigger_names())
    shadowed = {name for name in found if name in known}
    listed = [*found.values(), *(t for t in catalog() if t.trigger not in shadowed)]
    view(json_out).catalog(listed, shadowed)


@payloads_app.command("show")
@funnel
def payloads_show(
    trigger: Annotated[
        str,
        typer.Argument(
            metavar="TRIGGER",
            help="Trigger name (e.g. before_message, message_sent) or a project fixture's name.",
            autocompletion=completion.triggers,
        ),
    ],
    legacy: Legacy = False,
    type_: MessageType = default(BuildOptions, "type"),
    text: Text = default(BuildOptions, "text"),
    sender: Sender = default(BuildOptions, "sender"),
    receiver: Receiver = default(BuildOptions, "receiver"),
    group: ToGroup = default(BuildOptions, "group"),
    webhook_id: WebhookId = default(BuildOptions, "webhook_id"),
    app_id: PayloadAppId = default(BuildOptions, "app_id"),
    region: PayloadRegion = default(BuildOptions, "region"),
    set_: Sets = None,
    add: Adds = None,
    unset: Unsets = None,
    fixtures: Fixtures = None,
) -> None:
    """Print the exact JSON body `send` would send for TRIGGER."""
    options = build_options(type_, text, sender, receiver, group, webhook_id, app_id, region, set_, add, unset)
    from comethook_cli.cometchat.payloads import build, find_template
    from comethook_cli.outputs.terminal import Renderer

    template = find_template(trigger, legacy, project_fixtures(fixtures))
    renderer = Renderer()
    if template.fixture is not None:
        renderer.note(f"{template.fixture}: a {template.description}.")
    elif template.note:
        # stderr, so stdout stays the exact body `send` would send.
        renderer.note(template.note)
    renderer.document(build(template, options))


@payloads_app.command("save")
@funnel
def payloads_save(
    exchange_id: Annotated[
        str,
        typer.Argument(metavar="ID", help="Stored exchange id (or a unique end of it).", autocompletion=completion.history_ids),
    ],
    name: Annotated[str, typer.Argument(metavar="NAME", help="The fixture's name: `send NAME` sends it.")],
    keep_values: Annotated[
        bool,
        typer.Option("--keep-values", help="Keep the delivery's other values (metadata, custom data, URLs) as they are."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a fixture of that name.")] = False,
    fixtures: Fixtures = None,
) -> None:
    """Save a stored delivery as a project fixture, with placeholders for ids, people, texts and times."""
    from comethook_cli import jsonbody
    from comethook_cli.cometchat.fixtures import check_name, fixture_of
    from comethook_cli.engine import fixtures as on_disk
    from comethook_cli.engine.configfile import display_path
    from comethook_cli.engine.history.reader import History
    from comethook_cli.engine.replay import plain
    from comethook_cli.errors import UsageError
    from comethook_cli.outputs.terminal import Renderer

    check_name(name)
    with History() as history:
        exchange = history.get(exchange_id)
    try:
        payload = jsonbody.parse(plain(exchange))
    except jsonbody.JsonBodyError as error:
        raise UsageError(
            f"{exchange.id}'s body is not JSON ({error}): it cannot be a fixture.", "Pick a CometChat delivery."
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("trigger"), str):
        raise UsageError(f"{exchange.id} is not a CometChat delivery (no trigger): it cannot be a fixture.",
                         "`comethook history list` shows each exchange's trigger.")  # fmt: skip
    path = on_disk.save(fixtures_directory(fixtures), name, fixture_of(payload, name, keep_values), overwrite=force)
    renderer = Renderer()
    renderer.note(f"Saved {exchange.id} ({payload['trigger']}) as {display_path(path)}.", style="bold")
    kept = "its other values kept (--keep-values)" if keep_values else "nothing identifying kept"
    renderer.note(f"Placeholders for ids, people, texts and times; {kept}. Try: comethook send {name} --to URL --text hi")


@payloads_app.command("diff")
@funnel
def payloads_diff(
    trigger: Annotated[
        str | None, typer.Option("--trigger", metavar="TRIGGER", help="Only this trigger.", autocompletion=completion.triggers)
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON report: key paths, types and counts only, safe to share as it is.")
    ] = False,
) -> None:
    """Compare live deliveries in the history (from CometChat, not send/replay/emulate) with the catalog's templates."""
    from comethook_cli.engine.evidence import Evidence, diff_history
    from comethook_cli.engine.history.files import default_path
    from comethook_cli.engine.history.reader import History
    from comethook_cli.outputs import wire

    evidence = Evidence(())  # no history yet: nothing collected, which the report says with how to collect some
    if default_path().exists():
        with History() as history:
            evidence = diff_history(history.iter_all(), trigger.strip().lower() if trigger else None)
    if json_out:
        from comethook_cli.outputs.stream import NdjsonWriter

        NdjsonWriter().write(wire.PayloadsDiff(evidence))
        if not evidence.diffs:
            from comethook_cli.outputs.terminal import Renderer

            Renderer().note(f"No live deliveries in the history. {HOW_TO_COLLECT}")
        return
    from comethook_cli.outputs.evidence import report_lines
    from comethook_cli.outputs.terminal import Renderer

    Renderer().lines(report_lines(evidence, HOW_TO_COLLECT))
