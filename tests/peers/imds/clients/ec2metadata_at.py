"""Debian's cloud-utils 0.33 `ec2metadata`, run against a metadata base URL.

Usage: ec2metadata_at.py BASE [ec2metadata options]

`ec2metadata --url` moves its reads, but its IMDSv2 token request always goes to
http://169.254.169.254/latest/api/token (a module constant). This runs /usr/bin/ec2metadata's
own code with that one constant pointed at BASE and `--url BASE/2009-04-04` (its version).
"""

from __future__ import annotations

import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader

loader = SourceFileLoader("ec2metadata", "/usr/bin/ec2metadata")
spec = spec_from_loader("ec2metadata", loader)
assert spec is not None
module = module_from_spec(spec)
loader.exec_module(module)
base = sys.argv[1].rstrip("/")
module.session_token_url = base + "/latest/api/token"
sys.argv = ["ec2metadata", "--url", base + "/2009-04-04", *sys.argv[2:]]
module.main()
