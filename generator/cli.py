"""The `pattern` command line: parse, delegate, map user errors to one line and an exit code.

Nothing below this module prints; commands live in `generator.commands`.
"""

# No `from __future__ import annotations` here: typer reads every command's annotations at each
# start, and string annotations cost it an eval each (about 10 ms of a 70 ms `pattern --help`).

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__, schema
from .errors import PatternError, UsageError
from .kinds import GENERATED
from .output import one_line, paint
from .versions import DEFAULT_K8S_VERSION

HELP = ("Kubernetes sidecar patterns: generate pods with sidecars, inject them, run them.\n\n"
        "Installing the package also installs the kubectl plugin kubectl-pattern: with it on "
        "PATH, `kubectl pattern COMMAND` is `pattern COMMAND` (e.g. kubectl pattern list).")

app = typer.Typer(
    name="pattern",
    help=HELP,
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
    """Kubernetes sidecar patterns (the help is HELP)."""


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


# The sidecar options, declared once: `generate` and `inject` take them with one meaning.
WithOption = Annotated[list[str] | None, _opt(
    "--with", "-w", metavar="[NAME=]PATTERN",
    help="Add a sidecar pattern (repeatable); NAME=PATTERN names the sidecar otherwise.")]
SetOption = Annotated[list[str] | None, _opt(
    "--set", "-s", metavar="SIDECAR.KEY=VALUE", help="A parameter value (repeatable).")]
VolumeOption = Annotated[list[str] | None, _opt(
    "--volume", metavar="SIDECAR.VOLUME=EXISTING",
    help="Use a volume the pod already has for a sidecar's volume (repeatable). A volume the "
    "app already mounts at the sidecar's path is shared without it.")]
ContainerOption = Annotated[str | None, _opt(
    "--container", "-c", metavar="NAME",
    help="The app container, which gets the shared volumes (generate: its name, default the "
    "workload's; inject: which one, default the first).")]
K8sVersionOption = Annotated[str | None, _opt(
    "--k8s-version", metavar="X.Y",
    help=f"Target Kubernetes version (default {DEFAULT_K8S_VERSION}); 1.29+ gets native "
    "sidecars.")]
SidecarModeOption = Annotated[str | None, _opt(
    "--sidecar-mode", metavar="MODE",
    help="auto (by --k8s-version), native (initContainers with restartPolicy Always) or "
    "classic (containers).")]
RegistryOption = Annotated[str | None, _opt(
    "--image-registry", metavar="REGISTRY",
    help="Registry/prefix of the companion images (default ghcr.io/sidecar-patterns).")]
ValidateOption = Annotated[bool, _opt(
    "--validate/--no-validate",
    help="Check the result against the Kubernetes schema of the target version and the pod "
    "rules.")]


def _sidecar_flags(with_: list[str] | None, set_: list[str] | None, volume: list[str] | None,
                   container: str | None, k8s_version: str | None, sidecar_mode: str | None,
                   image_registry: str | None) -> Any:
    from .sidecars import SidecarFlags

    return SidecarFlags(with_=tuple(with_ or ()), set_=tuple(set_ or ()),
                        volume=tuple(volume or ()), container=container,
                        k8s_version=k8s_version, sidecar_mode=sidecar_mode,
                        image_registry=image_registry)


# -o is the output format in every command, as in kubectl; the file is --output-file. The old
# `-o FILE` still works (a value that is not a format), with a deprecation note.
MANIFEST_FORMATS = ("yaml",)
OutputFormat = Annotated[str | None, _opt(
    "--output", "-o", metavar="FORMAT",
    help="yaml, the one format (kubectl's meaning of -o). The old `-o FILE` still works, "
    "deprecated: use --output-file.")]
def _file_path(value: str) -> Path:
    # pathlib drops a trailing slash: `out/` would silently become the file `out`.
    if value.endswith("/"):
        raise typer.BadParameter(f"{value!r} names a directory; give a file name")
    return Path(value)


OutputFile = Annotated[Path | None, typer.Option(
    "--output-file", metavar="FILE", parser=_file_path,
    help="Write to this file (atomically) instead of stdout.")]
ForceOption = Annotated[bool, _opt(
    "--force", help="Replace --output-file (or --output-dir) even if pattern did not write it.")]


def _output_file(output: str | None, output_file: Path | None) -> tuple[Path | None, list[str]]:
    """The file to write (or None for stdout), and a deprecation note for `-o FILE`."""
    if output is None or output in MANIFEST_FORMATS:
        return output_file, []
    if output_file is not None:
        raise UsageError(f"-o {output!r}: the output format is {', '.join(MANIFEST_FORMATS)}; "
                         "the file is --output-file")
    if output in ("json", "table", "text", "wide", "name"):
        raise UsageError(f"-o {output!r}: this command writes {', '.join(MANIFEST_FORMATS)}")
    if output.endswith("/"):
        raise UsageError(f"-o {output!r}: names a directory; give a file name (--output-file)")
    return Path(output), [f"note: -o FILE is deprecated, write --output-file {output} (-o is "
                          "the output format, as in kubectl)"]


# Checks of runtime options, as click callbacks (the option's name is in the message).

def _seconds(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"{value} is not a number of seconds (0 or more)")
    return value


def _count(value: int | None) -> int | None:
    if value is not None and value < 0:
        raise typer.BadParameter(f"{value} is negative")
    return value


def _dns_label(value: str | None) -> str | None:
    if value is not None and schema.validate(value, {"type": "string", "format": "dns-label"},
                                             "name"):
        raise typer.BadParameter(f"{value[:80]!r} is not a DNS label (lowercase letters, "
                                 "digits and '-', at most 63)")
    return value


def _dns_labels(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        _dns_label(value)
    return values


def _not_empty(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise typer.BadParameter("must not be empty")
    return value


def _notes(notes: list[str]) -> None:
    for note in notes:
        typer.echo(note, err=True)


def _emit(text: str, notes: list[str], output: Path | None, *, force: bool,
          inputs: list[str]) -> None:
    """The result on stdout, or in --output-file (one writer for every command); then the notes
    on stderr, so a summary never precedes an error."""
    if output is None:
        sys.stdout.write(text)
    else:
        from .yamlio import write_output

        write_output(output, text, force=force, inputs=inputs)
    _notes(notes)
    if output is not None:
        typer.echo(f"wrote {output}", err=True)



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
    with_: WithOption = None,
    set_: SetOption = None,
    volume: VolumeOption = None,
    container: ContainerOption = None,
    kind: Annotated[str | None, _opt(help=f"{', '.join(GENERATED)} (default Pod).")] = None,
    replicas: Annotated[int | None, _opt(help="Replicas of a Deployment/StatefulSet.")] = None,
    schedule: Annotated[str | None, _opt(help="Cron schedule of a CronJob.")] = None,
    namespace: Annotated[str | None, _opt("--namespace", "-n", help="Namespace.")] = None,
    k8s_version: K8sVersionOption = None,
    sidecar_mode: SidecarModeOption = None,
    image_registry: RegistryOption = None,
    output: OutputFormat = None,
    output_file: OutputFile = None,
    force: ForceOption = False,
    validate: ValidateOption = True,
    catalogue: CatalogueOption = None,
) -> None:
    """Generate a pod (or workload) from an app container plus sidecar patterns.

    \b
    Examples:
      pattern generate --name shop --app-image node:20-bookworm-slim --app-port 3000 \\
        --with git-sync --set git-sync.repo=https://example.org/shop.git \\
        --with log-collector --output-file shop.yaml
      pattern generate -f stack.yaml --kind Deployment --replicas 3
      pattern generate --name db --app-image mariadb:11 --kind StatefulSet \\
        --with ssh --set ssh.authorizedKeysSecret=db-keys --set ssh.dataPath=/var/lib/mysql
      cat stack.yaml | pattern generate -f - | kubectl apply -f -
    """
    from .generate import GenerateRequest, generate_manifest

    target, deprecated = _output_file(output, output_file)

    request = GenerateRequest(
        file=file, name=name, app_image=app_image, app_ports=app_port or [],
        app_command=app_command, app_env=app_env or [], post_start=post_start, pre_stop=pre_stop,
        sidecars=_sidecar_flags(with_, set_, volume, container, k8s_version, sidecar_mode,
                                image_registry),
        kind=kind, replicas=replicas, schedule=schedule, namespace=namespace, validate=validate,
        catalogue=catalogue,
    )
    text, notes = generate_manifest(request)
    _emit(text, deprecated + notes, target, force=force, inputs=[file] if file else [])


@app.command("validate")
def validate_(
    files: Annotated[list[str] | None, typer.Argument(
        help="Manifest files ('-' reads stdin); or give them with -f.")] = None,
    file: Annotated[list[str] | None, _opt(
        "--file", "-f", metavar="FILE", help="A manifest file, as for inject (repeatable).")]
    = None,
    k8s_version: Annotated[str, typer.Option(
        help="Target Kubernetes X.Y.")] = DEFAULT_K8S_VERSION,
) -> None:
    """Check manifests against the Kubernetes schema (strict) and the pod rules.

    \b
    Examples:
      pattern validate shop.yaml
      pattern generate -f stack.yaml | pattern validate -f -
    """
    from .commands import validate_files

    every = [*(files or []), *(file or [])]
    if not every:
        raise UsageError("give the manifests to validate: FILE... or -f FILE ('-' for stdin)")
    problems, count = validate_files(every, k8s_version)
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise PatternError(f"{len(problems)} problem(s) in {count} object(s)")
    typer.echo(f"{count} object(s) valid for Kubernetes {k8s_version}", err=True)


FilesOption = Annotated[list[str] | None, _opt(
    "--file", "-f", metavar="FILE",
    help="Manifest file, folder (its .yaml/.yml/.json files) or '-' for stdin (repeatable).")]


@app.command()
def inject(
    file: FilesOption = None,
    with_: WithOption = None,
    set_: SetOption = None,
    volume: VolumeOption = None,
    container: ContainerOption = None,
    k8s_version: K8sVersionOption = None,
    sidecar_mode: SidecarModeOption = None,
    image_registry: RegistryOption = None,
    target: Annotated[str | None, _opt(
        "--target", "-t", metavar="KIND/NAME",
        help="Inject only this workload (KIND/NAME or KIND/NAMESPACE/NAME).")] = None,
    output: Annotated[str | None, _opt(
        "--output", "-o", metavar="FORMAT",
        help="yaml (the injected stream) or kustomize-component (a folder, --output-dir, with "
        "a kustomize Component that injects the --target workload). The old `-o FILE` still "
        "works, deprecated: use --output-file.")] = None,
    output_file: OutputFile = None,
    output_dir: Annotated[Path | None, _opt(
        "--output-dir", metavar="DIR", help="The folder of -o kustomize-component.")] = None,
    force: ForceOption = False,
    validate: ValidateOption = True,
    catalogue: CatalogueOption = None,
) -> None:
    """Add sidecar patterns to the pods of existing manifests (idempotent, exactly undoable).

    Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs (also inside a
    List) get the sidecars; every other document is written back unchanged, in order.
    Annotate an object or its pod sidecar-patterns.io/inject: "false" to skip it. Injecting
    again updates in place; `pattern uninject` removes exactly what was added.

    \b
    Examples:
      pattern inject -f db.yaml --with ssh --set ssh.authorizedKeysSecret=db-keys \\
        --set ssh.dataPath=/var/lib/mysql
      kubectl get deploy shop -o yaml | pattern inject -f - --with log-collector \\
        | kubectl apply -f -
      pattern inject -f k8s/ --with sync=git-sync --set sync.repo=https://example.org/s.git \\
        --container web --output-file injected.yaml
      pattern inject -f base/ --with log-collector --target Deployment/shop \\
        -o kustomize-component --output-dir components/logs
    """
    from .commands import InjectRequest, inject_component, inject_manifests

    request = InjectRequest(
        files=file or [],
        sidecars=_sidecar_flags(with_, set_, volume, container, k8s_version, sidecar_mode,
                                image_registry),
        validate=validate, catalogue=catalogue, target=target,
    )
    if output == "kustomize-component":
        if output_file is not None:
            raise UsageError("-o kustomize-component writes a folder: give it with --output-dir")
        paths, notes = inject_component(request, output_dir, force=force)
        _notes(notes)
        for path in paths:
            typer.echo(f"wrote {path}", err=True)
        return
    if output_dir is not None:
        raise UsageError("--output-dir is the folder of -o kustomize-component")
    written, deprecated = _output_file(output, output_file)
    text, notes = inject_manifests(request)
    _emit(text, deprecated + notes, written, force=force, inputs=file or [])


@app.command()
def uninject(
    file: FilesOption = None,
    output: OutputFormat = None,
    output_file: OutputFile = None,
    force: ForceOption = False,
) -> None:
    """Remove exactly what `pattern inject` added (its record says what), nothing else.

    \b
    Example:
      pattern uninject -f injected.yaml --output-file app.yaml
    """
    from .commands import uninject_manifests

    target, deprecated = _output_file(output, output_file)

    text, notes = uninject_manifests(file or [])
    _emit(text, deprecated + notes, target, force=force, inputs=file or [])


@app.command("diagram")
def diagram_(
    file: Annotated[str | None, typer.Argument(
        help="Manifest or stack file ('-' reads stdin).")] = None,
    stack_file: Annotated[str | None, _opt("--file", "-f", metavar="FILE",
                                           help="A stack file (same as the argument).")] = None,
    output: Annotated[str | None, _opt(
        "--output", "-o", metavar="FORMAT",
        help="svg (default) or png; without it, the suffix of --output-file.")] = None,
    output_file: OutputFile = None,
    force: ForceOption = False,
    catalogue: CatalogueOption = None,
) -> None:
    """Draw each pod: containers in start order, shared volumes with mount paths, ports and
    the Services that select it (Graphviz).

    \b
    Examples:
      pattern diagram shop.yaml --output-file shop.svg
      pattern generate -f stack.yaml | pattern diagram - -o png --output-file pod.png
    """
    from .commands import diagram
    from .diagram import SVG_MARKER

    path = file or stack_file
    if path is None:
        raise UsageError("give a manifest or stack file (or '-' for stdin)")
    fmt = output or (output_file.suffix.lstrip(".").lower() if output_file else "svg")
    data = diagram(path, fmt, catalogue)
    if output_file is None:
        if fmt != "svg":
            raise UsageError(f"-o {fmt}: write it to a file with --output-file")
        sys.stdout.write(data.decode("utf-8"))
        return
    from .yamlio import write_output

    write_output(output_file, data, force=force, inputs=[path], marker=SVG_MARKER,
                 writer="pattern diagram")
    typer.echo(f"wrote {output_file}", err=True)


@app.command()
def krm(
    catalogue: CatalogueOption = None,
) -> None:
    """Run as a KRM function: a ResourceList on stdin, injected per its functionConfig.

    The functionConfig is apiVersion sidecar-patterns.io/v1alpha1, kind Inject, with spec
    sidecars (as in a stack file), and optionally target {kind, name, namespace}, container,
    k8sVersion, sidecarMode and imageRegistry. The ResourceList goes to stdout with results;
    an error is a result with severity error, the same line on stderr, and exit code 1.
    The image ghcr.io/sidecar-patterns/krm runs this command (kustomize transformers).

    \b
    Example:
      kpt fn eval --exec "pattern krm" --fn-config inject.yaml
    """
    from .catalogue import Catalogue
    from .krm import run_stdin

    answer = run_stdin(Catalogue(catalogue))
    sys.stdout.write(answer.text)
    if answer.error is not None:
        sys.stdout.flush()
        _fail(answer.error, 1)


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


RuntimeOption = Annotated[str | None, _opt(
    "--runtime", metavar="auto|podman|docker",
    help="Container engine: auto (the first that answers: podman, then docker), podman or "
         "docker; default $SIDECAR_PATTERNS_RUNTIME or auto. A pod stays on its engine.")]


images_app = typer.Typer(help="Build the companion sidecar images.", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(images_app, name="images")


@images_app.command("build")
def images_build(
    names: Annotated[list[str] | None, typer.Argument(help="Images to build (default: all).")]
    = None,
    registry: Annotated[str | None, typer.Option(
        help="Also tag as REGISTRY/NAME:TAG.", callback=_not_empty)] = None,
    tag: Annotated[str | None, typer.Option(
        help="Tag for --registry (default: the image's VERSION).", callback=_not_empty)] = None,
    push: Annotated[bool, _opt("--push", help="Push the --registry tags.")] = False,
    quiet: Annotated[bool, _opt("--quiet", "-q", help="Only a line per image.")] = False,
    runtime: RuntimeOption = None,
) -> None:
    """Build the images in images/ with the chosen engine, skipping those already up to date.

    On Docker 20.10, images that need named build contexts are built with podman and loaded
    into docker (podman save | docker load).

    \b
    Examples:
      pattern images build
      pattern images build git-sync --registry registry.example.org/team --push
      pattern images build --runtime docker
    """
    from .images import build

    if push and registry is None:
        raise UsageError("--push needs --registry (where to push)")
    build(names or [], registry=registry, tag=tag, push=push, quiet=quiet,
          say=lambda line: typer.echo(line, err=True), runtime=runtime)


# `run` and `apply` (which starts the workloads that are not running yet, as `run` does).
WaitOption = Annotated[bool, _opt("--wait", help="Return once every started container is "
                                                 "ready.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds --wait may take.",
                                              callback=_seconds)]
PublishOption = Annotated[list[str] | None, _opt(
    "--publish", "-p", metavar="[IP:]HOST:CONTAINER",
    help="Publish a container port on the host, on 127.0.0.1 unless IP is given (repeatable; "
         "apply: for the pods it starts, a running pod keeps its ports).")]


@app.command()
def run(
    file: Annotated[str | None, typer.Argument(
        help="Manifest or stack file to run ('-' reads stdin).")] = None,
    stack_file: Annotated[str | None, _opt("--file", "-f", metavar="FILE",
                                           help="A stack file (same as the argument).")] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 120,
    publish: PublishOption = None,
    replace: Annotated[bool, _opt("--replace", help="Replace pods of the same name.")] = False,
    verbose: Annotated[bool, _opt("--verbose", "-v",
                                  help="Say what is translated for the engine, and each step.")]
    = False,
    catalogue: CatalogueOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Run the pod(s) of a manifest or stack file on podman or Docker, faithfully.

    Native sidecars start before the app and are waited for; readiness and startup probes,
    postStart and preStop hooks run as on Kubernetes, though neither engine knows them.

    \b
    Examples:
      pattern run shop.yaml --wait
      pattern generate -f stack.yaml | pattern run - --wait -p 8080:3000
      pattern run shop.yaml --runtime docker -p 0.0.0.0:8080:3000
    """
    from .commands import run_pods

    if file is not None and stack_file is not None:
        raise UsageError(f"give the file once: {file!r} as the argument or {stack_file!r} with -f")
    rows = run_pods(file or stack_file, wait=wait, timeout=timeout, publish=publish or [],
                    replace=replace, catalogue=catalogue, runtime=runtime,
                    say=(lambda line: typer.echo(line, err=True)) if verbose else None)
    sys.stdout.write(rows)


@app.command()
def apply(
    file: Annotated[str | None, typer.Argument(
        help="Manifest or stack file to apply ('-' reads stdin).")] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 120,
    publish: PublishOption = None,
    verbose: Annotated[bool, _opt("--verbose", "-v", help="Say each step.")] = False,
    catalogue: CatalogueOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Apply changed ConfigMaps and Secrets to running pods, as `kubectl apply` would.

    A ConfigMap or Secret volume of a running pod is updated the way the kubelet updates it
    (a new `..<timestamp>` folder and one atomic `..data` symlink swap), at once and without
    restarting anything. Workloads that are not running are started as by `run`; a pod whose
    template changed is refused (replace it with `run --replace`).

    \b
    Examples:
      pattern apply shop.yaml
      pattern apply nginx-config.yaml     # only a ConfigMap: every running pod that mounts it
    """
    from .commands import apply_pods

    sys.stdout.write(apply_pods(file, wait=wait, timeout=timeout, publish=publish or [],
                                catalogue=catalogue, runtime=runtime,
                                say=(lambda line: typer.echo(line, err=True)) if verbose
                                else None))


@app.command()
def status(
    pods: Annotated[list[str] | None, typer.Argument(
        help="Pods (default: all started).", callback=_dns_labels)] = None,
    output: Annotated[str, _opt("--output", "-o", help="table or json.")] = "table",
    runtime: RuntimeOption = None,
) -> None:
    """Show every container's state and readiness (probes checked now).

    \b
    Example:
      pattern status
    """
    from .commands import pod_status

    sys.stdout.write(pod_status(pods or [], output, runtime))


@app.command()
def logs(
    container: Annotated[str | None, typer.Argument(
        help="Container (default: the app).", callback=_dns_label)] = None,
    pod: Annotated[str | None, typer.Option(
        "--pod", help="Pod (default: the only one).", callback=_dns_label)] = None,
    follow: Annotated[bool, _opt("--follow", "-f", help="Keep streaming.")] = False,
    tail: Annotated[int | None, typer.Option(
        "--tail", help="Only the last N lines.", callback=_count)] = None,
    runtime: RuntimeOption = None,
) -> None:
    """Print a container's logs.

    \b
    Examples:
      pattern logs
      pattern logs git-sync -f
    """
    from .commands import pod_logs

    raise typer.Exit(pod_logs(pod, container, follow=follow, tail=tail, runtime=runtime))


@app.command()
def down(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Pod names or the manifest/stack files they came from.")] = None,
    all_: Annotated[bool, _opt("--all", help=(
        "Every pod pattern run started; with --runtime podman|docker also every pod of that "
        "engine with our label (one whose state folder was lost)."))] = False,
    grace_period: Annotated[int | None, typer.Option(
        "--grace-period", help="Seconds to wait after SIGTERM (default: the pod's).",
        callback=_count)] = None,
    verbose: Annotated[bool, _opt("--verbose", "-v", help="Say each step.")] = False,
    catalogue: CatalogueOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Stop pods as Kubernetes does (preStop, SIGTERM, grace period) and remove all of ours.

    \b
    Examples:
      pattern down shop
      pattern down --all
    """
    from .commands import stop_pods

    stopped = stop_pods(targets or [], everything=all_, grace=grace_period, catalogue=catalogue,
                        runtime=runtime,
                        say=(lambda line: typer.echo(line, err=True)) if verbose else None)
    for name in stopped:
        typer.echo(f"{name}: removed", err=True)


webhook_app = typer.Typer(
    help="Inject sidecars in the cluster: a mutating admission webhook, by pod annotation.",
    no_args_is_help=True, rich_markup_mode=None)
app.add_typer(webhook_app, name="webhook")


def _env(name: str) -> str:
    return f"SIDECAR_PATTERNS_WEBHOOK_{name}"


@webhook_app.command("serve")
def webhook_serve(
    address: Annotated[str, typer.Option(envvar=_env("ADDRESS"), show_envvar=True,
                                         help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(envvar=_env("PORT"), show_envvar=True,
                                      help="HTTPS port.")] = 8443,
    cert_file: Annotated[Path, typer.Option(
        envvar=_env("CERT_FILE"), show_envvar=True,
        help="PEM serving certificate (read again when it changes).")]
    = Path("/etc/webhook/tls/tls.crt"),
    key_file: Annotated[Path, typer.Option(envvar=_env("KEY_FILE"), show_envvar=True,
                                           help="PEM private key of the certificate.")]
    = Path("/etc/webhook/tls/tls.key"),
    profiles: Annotated[Path | None, typer.Option(
        envvar=_env("PROFILES"), show_envvar=True,
        help="A WebhookProfiles file: named sets of stack-file sidecars, chosen by the pod "
        "annotation sidecar-patterns.io/profile (read again when it changes).")] = None,
    k8s_version: Annotated[str, typer.Option(
        envvar=_env("K8S_VERSION"), show_envvar=True,
        help="The cluster's Kubernetes X.Y (an AdmissionReview does not carry it): 1.29+ "
        "gets native sidecars.")] = DEFAULT_K8S_VERSION,
    sidecar_mode: Annotated[str, typer.Option(
        envvar=_env("SIDECAR_MODE"), show_envvar=True,
        help="auto (by --k8s-version), native or classic.")] = "auto",
    image_registry: RegistryOption = None,
    on_error: Annotated[str, typer.Option(
        envvar=_env("ON_ERROR"), show_envvar=True,
        help="A pod that cannot be injected: deny (the default), or allow it unchanged with "
        "the reason as a warning.")] = "deny",
    max_connections: Annotated[int, typer.Option(
        envvar=_env("MAX_CONNECTIONS"), show_envvar=True,
        help="Connections handled at once; more wait in the backlog.")] = 64,
    drain_seconds: Annotated[float, typer.Option(
        envvar=_env("DRAIN_SECONDS"), show_envvar=True, callback=_seconds,
        help="After SIGTERM: seconds not ready but still answering, before it stops "
        "accepting and finishes what is in flight.")] = 5,
    reload_seconds: Annotated[float, typer.Option(
        envvar=_env("RELOAD_SECONDS"), show_envvar=True, callback=_seconds,
        help="How often the certificate and profiles are checked for changes.")] = 10,
    catalogue: CatalogueOption = None,
) -> None:
    """Serve AdmissionReviews (admission.k8s.io/v1) for Pod CREATE over HTTPS on /mutate.

    A pod annotated sidecar-patterns.io/inject: "log-collector,sync=git-sync" (and/or
    sidecar-patterns.io/profile: NAME) gets those sidecars, with values from annotations
    sidecar-patterns.io/set.SIDECAR.KEY, by the same engine and record as `pattern inject`.
    GET /healthz (counters) and /readyz; SIGTERM drains.

    \b
    Example:
      pattern webhook serve --cert-file tls.crt --key-file tls.key --port 8443
    """
    from .catalogue import Catalogue
    from .stack import check_flags
    from .webhook import Settings
    from .webhook_server import ServeOptions, serve

    check_flags([("--k8s-version", k8s_version), ("--sidecar-mode", sidecar_mode),
                 ("--image-registry", image_registry)])
    if on_error not in ("deny", "allow"):
        raise UsageError(f"--on-error {on_error!r}: choose deny or allow")
    if max_connections < 1:
        raise UsageError("--max-connections: at least 1")
    settings = Settings(k8s_version=k8s_version, sidecar_mode=sidecar_mode,
                        image_registry=image_registry, on_error=on_error)
    options = ServeOptions(address=address, port=port, cert_file=cert_file, key_file=key_file,
                           profiles_file=profiles, settings=settings,
                           max_connections=max_connections, drain_seconds=drain_seconds or 0,
                           reload_seconds=reload_seconds or 10)
    raise typer.Exit(serve(options, Catalogue(catalogue)))


@webhook_app.command("manifests")
def webhook_manifests_(
    namespace: Annotated[str, _opt("--namespace", "-n", help="The webhook's namespace.")]
    = "sidecar-patterns-webhook",
    image: Annotated[str | None, _opt(
        metavar="REF", help="The webhook's image (default: the one `pattern images build "
        "webhook` makes).")] = None,
    replicas: Annotated[int, _opt(help="Replicas (2+: a failurePolicy Fail webhook must "
                                  "survive a node drain).")] = 2,
    tls: Annotated[str, _opt(
        help="self-signed (a CA and certificate made now, in a Secret and the caBundle) or "
        "cert-manager (a Certificate and the CA injector).")] = "self-signed",
    ca_dir: Annotated[Path | None, _opt(
        metavar="DIR", help="self-signed: keep the CA here (made if absent, reused if "
        "present), so renewing the serving certificate leaves the caBundle as it is.")] = None,
    cert_days: Annotated[int, _opt(help="Days the serving certificate is valid.")] = 365,
    failure_policy: Annotated[str, _opt(
        help="Fail (a pod that asks for sidecars never starts without them) or Ignore.")]
    = "Fail",
    timeout_seconds: Annotated[int, _opt(help="The API server's timeout for one review "
                                         "(1-30).")] = 10,
    profiles: Annotated[str | None, _opt(
        metavar="FILE", help="A WebhookProfiles file, put in a ConfigMap the pods mount.")]
    = None,
    k8s_version: K8sVersionOption = None,
    on_error: Annotated[str, _opt(help="deny or allow (see webhook serve --on-error).")]
    = "deny",
    output: OutputFormat = None,
    output_file: OutputFile = None,
    force: ForceOption = False,
) -> None:
    """Write everything that deploys the webhook: Namespace, ServiceAccount, Deployment,
    PodDisruptionBudget, Service, TLS and the MutatingWebhookConfiguration.

    Only pods labelled sidecar-patterns.io/injection=enabled are sent to the webhook, never
    from its own namespace or kube-system.

    \b
    Examples:
      pattern webhook manifests --ca-dir ~/.sidecar-patterns-ca | kubectl apply -f -
      pattern webhook manifests --tls cert-manager --profiles profiles.yaml \\
        --output-file webhook.yaml
    """
    from .webhook_manifests import WebhookManifests, webhook_manifests

    target, deprecated = _output_file(output, output_file)
    text, notes = webhook_manifests(WebhookManifests(
        namespace=namespace, image=image, replicas=replicas, tls=tls, ca_dir=ca_dir,
        cert_days=cert_days, failure_policy=failure_policy, timeout_seconds=timeout_seconds,
        profiles=profiles, k8s_version=k8s_version, on_error=on_error))
    _emit(text, deprecated + notes, target, force=force, inputs=[profiles] if profiles else [])


@app.command()
def ui(
    port: Annotated[int, typer.Option(
        "--port", help="Port to listen on (0: any free one).", min=0, max=65535)] = 8421,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on; anything but loopback is reachable from the "
        "network (a warning says so).")] = "127.0.0.1",
    catalogue: CatalogueOption = None,
) -> None:
    """Serve a local web console: the catalogue, a composer with a live preview of what
    `pattern generate` writes, and inject into a pasted manifest. Prints the URL and opens
    nothing; Ctrl-C stops it.

    \b
    Example:
      pattern ui --port 8421
    """
    from .web.app import serve

    try:
        serve(host, port, catalogue, say=lambda line: typer.echo(line, err=True))
    except KeyboardInterrupt:
        typer.echo("pattern ui: stopped", err=True)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"{paint('error:', '31')} {one_line(message)}\n")
    sys.exit(code)


def main(prog_name: str = "pattern") -> None:
    """Console entry point: user errors, and usage errors click finds, become one line on
    stderr and an exit code."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    try:
        code = app(prog_name=prog_name, standalone_mode=False)
    except NoArgsIsHelpError as error:
        error.show()
        sys.exit(error.exit_code)
    except UsageError as error:
        where = error.ctx.command_path if error.ctx is not None else "pattern"
        _fail(f"{error.format_message()} (see {where} --help)", error.exit_code)
    except ClickException as error:
        _fail(error.format_message(), error.exit_code)
    except PatternError as error:
        _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
    sys.exit(code if isinstance(code, int) else 0)


def kubectl_main() -> None:
    """`kubectl-pattern`, which kubectl runs for `kubectl pattern ...` (a plugin on PATH)."""
    main("kubectl pattern")
