#!/bin/sh
# Stages `pattern` itself onto an empty base, for an image that runs it (krm, webhook): the one
# place that says how. In the build stage, after
#   COPY --from=program . /opt/pattern/     (site/ and PYTHON, from generator/images.py)
#   COPY --from=common stage.py stage-program.sh pattern /
# run `sh /stage-program.sh [STAGE.PY OPTIONS...]`; the final stage then sets
# PATH=/usr/local/bin:/usr/bin and PYTHONPATH=/opt/pattern/site, entrypoint `pattern COMMAND`.
# Staged by images/_common/stage.py: the interpreter, the stdlib modules and site/ packages
# the generator's command line imports (bytecode only), each package's data (templates,
# schemas, the catalogue), kubernetes-validate's strict schemas as the archives (one a
# version) generator.validate reads; never pip, setuptools, tests or docs.
set -eu
site=/opt/pattern/site
# Compiled modules in the staged program were built for one Python X.Y: refuse another.
want=$(cat /opt/pattern/PYTHON)
have=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$want" != "$have" ]; then
  echo "the program was staged from Python $want; this base has Python $have" >&2
  exit 1
fi
# Any uid may run it (kustomize runs functions as nobody); nothing is written at run time.
chmod -R a+rX "$site"
install -D -m 0755 /pattern /staged/usr/local/bin/pattern
# --python-module: codecs the stdlib looks up by name on paths `pattern` takes (jinja2 reads
# template string literals with unicode_escape; zipfile reads the schema archive's member
# names with cp437).
exec python3 /stage.py --root /staged --user 65532 --nobody --bytecode-only \
  --python-site "$site" --python-entry generator.cli \
  --path "$site/kubernetes_validate/__init__.py" \
  --path "$site/kubernetes_validate/kubernetes-json-schema" \
  --python-module encodings.unicode_escape --python-module encodings.cp437 "$@"
