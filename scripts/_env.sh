# Shared by scripts/run and scripts/test: a project virtualenv, reinstalled when pyproject.toml changes.
# shellcheck shell=bash

ensure_venv() {  # ensure_venv [extra]  e.g. "test"
  local extra="${1:-}" stamp spec
  spec="."
  [ -n "$extra" ] && spec=".[$extra]"
  stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)${extra:+-$extra}"
  if [ ! -f "$stamp" ]; then
    echo "Installing pcp and its dependencies into .venv ..." >&2
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    .venv/bin/python -m pip install --quiet -e "$spec" >&2
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
}
