"""Generators of the published interface documents in docs/ (AsyncAPI, OpenAPI, rules.md);
`python -m interfaces.generate` writes them, `--check` names the stale ones."""
