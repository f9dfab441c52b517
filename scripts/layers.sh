#!/usr/bin/env bash
# Checks that includes between src/ folders (and app/) go down the layers
# only, as the README's architecture section documents:
#   common -> config -> outputs -> data, models -> checkpoint -> metrics
#     -> distributed -> evaluation -> reporting -> training -> run -> app
# A folder may include its own headers and those of any folder before it;
# data and models share a layer and include neither the other. Prints each
# include that goes up or sideways, and exits 1 if there is one.
#   scripts/layers.sh [ROOT]
set -euo pipefail
root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
declare -A layer=(
  [common]=0 [config]=1 [outputs]=2 [data]=3 [models]=3 [checkpoint]=4 [metrics]=5
  [distributed]=6 [evaluation]=7 [reporting]=8 [training]=9 [run]=10 [app]=11
)
bad=0
count=0
cd "$root"
while IFS=: read -r file line text; do
  # src/<folder>/... or app/...
  from="${file#src/}"
  from="${from%%/*}"
  [[ "$file" == app/* ]] && from=app
  target="$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/' <<<"$text")"
  [[ "$target" == */* ]] || continue  # generated headers (event.pb.h)
  to="${target%%/*}"
  if [[ -z "${layer[$from]+x}" ]]; then
    echo "layers: $file is in a folder with no layer ($from): add it to scripts/layers.sh and the README" >&2
    bad=1
    continue
  fi
  if [[ -z "${layer[$to]+x}" ]]; then
    echo "layers: $file:$line includes $target, from a folder with no layer ($to)" >&2
    bad=1
    continue
  fi
  count=$((count + 1))
  if [[ "$from" != "$to" && ${layer[$to]} -ge ${layer[$from]} ]]; then
    echo "layers: $file:$line includes $target: $to is not below $from" >&2
    bad=1
  fi
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' src app --include='*.h' --include='*.cpp')
if [[ $bad -ne 0 ]]; then
  echo "layers: includes must go down: common -> config -> outputs -> data, models -> checkpoint -> metrics -> distributed -> evaluation -> reporting -> training -> run -> app" >&2
  exit 1
fi
echo "layers: $count includes between and within folders, all downward"
