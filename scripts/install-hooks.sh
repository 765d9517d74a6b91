#!/bin/bash
# install-hooks.sh - installs scripts/pre-commit as this clone's git pre-commit hook.
set -eu
top=$(git rev-parse --show-toplevel)
ln -sf ../../scripts/pre-commit "$top/.git/hooks/pre-commit"
echo "pre-commit hook installed: format check and unit tests run before each commit"
