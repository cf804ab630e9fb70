"""The `pattern` command line: parse, delegate, map user errors to one line and an exit code.

Nothing below this module prints; commands live in `generator.commands`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .errors import PatternError
from .output import one_line, paint
from .stack import DEFAULT_K8S_VERSION

app = typer.Typer(
    name="pattern",
    help="Kubernetes sidecar patterns: generate pods with sidecars, inject them, run them.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

CatalogueOption = Annotated[
    Path | None,
    typer.Option("--catalogue", envvar="SIDECAR_PATTERNS_CATALOGUE", show_envvar=True,
                 help="Catalogue folder (default: the one shipped with this install)."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pattern {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Kubernetes sidecar patterns: generate pods with sidecars, inject them, run them."""


@app.command("list")
def list_(
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    catalogue: CatalogueOption = None,
) -> None:
    """List the patterns in the catalogue.

    \b
    Example:
      pattern list
      pattern list -o json | jq -r '.[].name'
    """
    from .commands import list_patterns

    sys.stdout.write(list_patterns(output, catalogue))


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Pattern name, e.g. git-sync.")],
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
    catalogue: CatalogueOption = None,
) -> None:
    """Show what a pattern is for, its parameters and a ready example.

    \b
    Example:
      pattern show git-sync
    """
    from .commands import show_pattern

    sys.stdout.write(show_pattern(name, output, catalogue))


def _opt(*names: str, help: str, metavar: str | None = None) -> Any:
    return typer.Option(*names, help=help, metavar=metavar)



@app.command()
def generate(
    file: Annotated[str | None, _opt(
        "--file", "-f", metavar="FILE",
        help="Stack file with the app and its sidecars ('-' reads stdin).")] = None,
    name: Annotated[str | None, _opt(help="Workload name (DNS label).")] = None,
    app_image: Annotated[str | None, _opt(help="The app's image.")] = None,
    app_port: Annotated[list[int] | None, _opt(
        metavar="PORT", help="A port the app listens on (repeatable).")] = None,
    app_command: Annotated[str | None, _opt(
        help="The app's command, split like a shell would.")] = None,
    app_env: Annotated[list[str] | None, _opt(
        metavar="KEY=VALUE", help="Environment for the app (repeatable).")] = None,
    post_start: Annotated[str | None, _opt(
        help="Shell command run in the app right after it starts.")] = None,
    pre_stop: Annotated[str | None, _opt(
        help="Shell command run in the app before it stops.")] = None,
    with_: Annotated[list[str] | None, _opt(
        "--with", "-w", metavar="PATTERN", help="Add a sidecar pattern (repeatable).")] = None,
    set_: Annotated[list[str] | None, _opt(
        "--set", "-s", metavar="PATTERN.KEY=VALUE", help="A parameter value (repeatable).")] = None,
    kind: Annotated[str | None, _opt(
        help="Pod, Deployment, StatefulSet, DaemonSet, Job or CronJob (default Pod).")] = None,
    replicas: Annotated[int | None, _opt(help="Replicas of a Deployment/StatefulSet.")] = None,
    schedule: Annotated[str | None, _opt(help="Cron schedule of a CronJob.")] = None,
    namespace: Annotated[str | None, _opt("--namespace", "-n", help="Namespace.")] = None,
    k8s_version: Annotated[str | None, _opt(
        help=f"Target Kubernetes X.Y (default {DEFAULT_K8S_VERSION}); "
        "1.29+ gets native sidecars.")] = None,
    sidecar_mode: Annotated[str | None, _opt(
        help="auto (by --k8s-version), native (initContainers with restartPolicy Always) "
        "or classic (containers).")] = None,
    image_registry: Annotated[str | None, _opt(
        help="Registry/prefix of the companion images (default ghcr.io/sidecar-patterns).")] = None,
    output: Annotated[Path | None, _opt(
        "--output", "-o", metavar="FILE",
        help="Write to this file (atomically) instead of stdout.")] = None,
    force: Annotated[bool, _opt(
        "--force", help="Overwrite --output even if pattern generate did not write it.")] = False,
    validate: Annotated[bool, _opt(
        "--validate/--no-validate",
        help="Check the result against the Kubernetes schema of the target version.")] = True,
    catalogue: CatalogueOption = None,
) -> None:
    """Generate a pod (or workload) from an app container plus sidecar patterns.

    \b
    Examples:
      pattern generate --name shop --app-image node:20-bookworm-slim --app-port 3000 \\
        --with git-sync --set git-sync.repo=https://example.org/shop.git \\
        --with log-collector -o shop.yaml
      pattern generate -f stack.yaml --kind Deployment --replicas 3
      cat stack.yaml | pattern generate -f - | kubectl apply -f -
    """
    from .commands import GenerateRequest, generate_manifest

    request = GenerateRequest(
        file=file, name=name, app_image=app_image, app_ports=app_port or [],
        app_command=app_command, app_env=app_env or [], post_start=post_start, pre_stop=pre_stop,
        patterns=with_ or [], assignments=set_ or [], kind=kind, replicas=replicas,
        schedule=schedule, namespace=namespace, k8s_version=k8s_version,
        sidecar_mode=sidecar_mode, image_registry=image_registry, validate=validate,
        catalogue=catalogue,
    )
    text = generate_manifest(request)
    if output is None:
        sys.stdout.write(text)
    else:
        from .commands import write_output

        write_output(output, text, force=force, inputs=[file] if file else [])
        typer.echo(f"wrote {output}", err=True)


@app.command("validate")
def validate_(
    files: Annotated[list[str], typer.Argument(help="Manifest files ('-' reads stdin).")],
    k8s_version: Annotated[str, typer.Option(
        help="Target Kubernetes X.Y.")] = DEFAULT_K8S_VERSION,
) -> None:
    """Check manifests against the Kubernetes schema (strict) and the pod rules.

    \b
    Examples:
      pattern validate shop.yaml
      pattern generate -f stack.yaml | pattern validate -
    """
    from .commands import validate_files

    problems, count = validate_files(files, k8s_version)
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise PatternError(f"{len(problems)} problem(s) in {count} object(s)")
    typer.echo(f"{count} object(s) valid for Kubernetes {k8s_version}", err=True)


FilesOption = Annotated[list[str] | None, _opt(
    "--file", "-f", metavar="FILE",
    help="Manifest file, folder (its .yaml/.yml/.json files) or '-' for stdin (repeatable).")]
ManifestOutput = Annotated[Path | None, _opt(
    "--output", "-o", metavar="FILE", help="Write to this file (atomically) instead of stdout.")]


def _emit(text: str, notes: list[str], output: Path | None) -> None:
    for note in notes:
        typer.echo(note, err=True)
    if output is None:
        sys.stdout.write(text)
    else:
        from .commands import write_manifest

        write_manifest(output, text)
        typer.echo(f"wrote {output}", err=True)


@app.command()
def inject(
    file: FilesOption = None,
    with_: Annotated[list[str] | None, _opt(
        "--with", "-w", metavar="PATTERN",
        help="A sidecar pattern to inject (repeatable); NAME=PATTERN names it otherwise.")] = None,
    set_: Annotated[list[str] | None, _opt(
        "--set", "-s", metavar="PATTERN.KEY=VALUE", help="A parameter value (repeatable).")] = None,
    container: Annotated[str | None, _opt(
        "--container", "-c", metavar="NAME",
        help="The app container that gets the shared volumes (default: the first).")] = None,
    k8s_version: Annotated[str, _opt(
        help="Target Kubernetes X.Y; 1.29+ gets native sidecars.")] = DEFAULT_K8S_VERSION,
    sidecar_mode: Annotated[str, _opt(
        help="auto (by --k8s-version), native or classic.")] = "auto",
    image_registry: Annotated[str | None, _opt(
        help="Registry/prefix of the companion images (default ghcr.io/sidecar-patterns).")] = None,
    output: ManifestOutput = None,
    catalogue: CatalogueOption = None,
) -> None:
    """Add sidecar patterns to the pods of existing manifests (idempotent, exactly undoable).

    Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs (also inside a
    List) get the sidecars; every other document is written back unchanged, in order.
    Annotate an object or its pod sidecar-patterns.io/inject: "false" to skip it. Injecting
    again updates in place; `pattern uninject` removes exactly what was added.

    \b
    Examples:
      pattern inject -f app.yaml --with file-server --set file-server.dir=/var/www
      kubectl get deploy shop -o yaml | pattern inject -f - --with log-collector \\
        | kubectl apply -f -
      pattern inject -f k8s/ --with git-sync --container web -o injected.yaml
    """
    from .commands import InjectRequest, inject_manifests

    text, notes = inject_manifests(InjectRequest(
        files=file or [], patterns=with_ or [], assignments=set_ or [], container=container,
        k8s_version=k8s_version, sidecar_mode=sidecar_mode, image_registry=image_registry,
        catalogue=catalogue,
    ))
    _emit(text, notes, output)


@app.command()
def uninject(
    file: FilesOption = None,
    output: ManifestOutput = None,
) -> None:
    """Remove exactly what `pattern inject` added (its record says what), nothing else.

    \b
    Example:
      pattern uninject -f injected.yaml -o app.yaml
    """
    from .commands import uninject_manifests

    text, notes = uninject_manifests(file or [])
    _emit(text, notes, output)


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The new pattern's name (lowercase words and '-').")],
    image: Annotated[str | None, _opt(
        metavar="REF", help="The sidecar's image (default: ghcr.io/sidecar-patterns/NAME at "
        "the version in images/NAME/VERSION, or 0.1.0).")] = None,
    catalogue: CatalogueOption = None,
) -> None:
    """Scaffold a new pattern in the catalogue, ready for `pattern list` and the tests.

    \b
    Example:
      pattern new my-helper && pattern show my-helper
    """
    from .commands import new_pattern

    for path in new_pattern(name, image=image, root=catalogue):
        typer.echo(f"wrote {path}", err=True)


images_app = typer.Typer(help="Build the companion sidecar images.", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(images_app, name="images")


@images_app.command("build")
def images_build(
    names: Annotated[list[str] | None, typer.Argument(help="Images to build (default: all).")]
    = None,
    registry: Annotated[str | None, _opt(help="Also tag as REGISTRY/NAME:TAG.")] = None,
    tag: Annotated[str | None, _opt(help="Tag for --registry (default: the image's VERSION).")]
    = None,
    push: Annotated[bool, _opt("--push", help="Push the --registry tags.")] = False,
    quiet: Annotated[bool, _opt("--quiet", "-q", help="Only a line per image.")] = False,
) -> None:
    """Build the images in images/ (podman, or docker), skipping those already up to date.

    \b
    Examples:
      pattern images build
      pattern images build git-sync --registry registry.example.org/team --push
    """
    from .images import build

    build(names or [], registry=registry, tag=tag, push=push, quiet=quiet,
          say=lambda line: typer.echo(line, err=True))


@app.command()
def run(
    file: Annotated[str | None, typer.Argument(
        help="Manifest or stack file to run ('-' reads stdin).")] = None,
    stack_file: Annotated[str | None, _opt("--file", "-f", metavar="FILE",
                                           help="A stack file (same as the argument).")] = None,
    wait: Annotated[bool, _opt("--wait", help="Return once every container is ready.")] = False,
    timeout: Annotated[float, _opt("--timeout", help="Seconds --wait may take.")] = 120,
    publish: Annotated[list[str] | None, _opt(
        "--publish", "-p", metavar="HOST:CONTAINER",
        help="Publish a container port on 127.0.0.1 (repeatable).")] = None,
    replace: Annotated[bool, _opt("--replace", help="Replace pods of the same name.")] = False,
    verbose: Annotated[bool, _opt("--verbose", "-v",
                                  help="Say what is translated for podman, and each step.")]
    = False,
    catalogue: CatalogueOption = None,
) -> None:
    """Run the pod(s) of a manifest or stack file on podman, faithfully.

    Native sidecars start before the app and are waited for; readiness and startup probes,
    postStart and preStop hooks run as on Kubernetes, though podman ignores them.

    \b
    Examples:
      pattern run shop.yaml --wait
      pattern generate -f stack.yaml | pattern run - --wait -p 8080:3000
    """
    from .commands import run_pods

    rows = run_pods(file or stack_file, wait=wait, timeout=timeout, publish=publish or [],
                    replace=replace, catalogue=catalogue,
                    say=(lambda line: typer.echo(line, err=True)) if verbose else None)
    sys.stdout.write(rows)


@app.command()
def status(
    pods: Annotated[list[str] | None, typer.Argument(help="Pods (default: all started).")] = None,
    output: Annotated[str, _opt("--output", "-o", help="table or json.")] = "table",
) -> None:
    """Show every container's state and readiness (probes checked now).

    \b
    Example:
      pattern status
    """
    from .commands import pod_status

    sys.stdout.write(pod_status(pods or [], output))


@app.command()
def logs(
    container: Annotated[str | None, typer.Argument(help="Container (default: the app).")]
    = None,
    pod: Annotated[str | None, _opt("--pod", help="Pod (default: the only one).")] = None,
    follow: Annotated[bool, _opt("--follow", "-f", help="Keep streaming.")] = False,
    tail: Annotated[int | None, _opt("--tail", help="Only the last N lines.")] = None,
) -> None:
    """Print a container's logs.

    \b
    Examples:
      pattern logs
      pattern logs git-sync -f
    """
    from .commands import pod_logs

    raise typer.Exit(pod_logs(pod, container, follow=follow, tail=tail))


@app.command()
def down(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Pod names or the manifest/stack files they came from.")] = None,
    all_: Annotated[bool, _opt("--all", help="Every pod pattern run started.")] = False,
    grace_period: Annotated[int | None, _opt(
        "--grace-period", help="Seconds to wait after SIGTERM (default: the pod's).")] = None,
    verbose: Annotated[bool, _opt("--verbose", "-v", help="Say each step.")] = False,
    catalogue: CatalogueOption = None,
) -> None:
    """Stop pods as Kubernetes does (preStop, SIGTERM, grace period) and remove all of ours.

    \b
    Examples:
      pattern down shop
      pattern down --all
    """
    from .commands import stop_pods

    stopped = stop_pods(targets or [], everything=all_, grace=grace_period, catalogue=catalogue,
                        say=(lambda line: typer.echo(line, err=True)) if verbose else None)
    for name in stopped:
        typer.echo(f"{name}: removed", err=True)


def main() -> None:
    """Console entry point: user errors become one line on stderr and an exit code."""
    try:
        app(prog_name="pattern")
    except PatternError as error:
        sys.stderr.write(f"{paint('error:', '31')} {one_line(str(error))}\n")
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
