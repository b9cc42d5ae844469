#!/usr/bin/env bash
# The arena demo: installs what it needs, builds, and runs a real SN94-style replay
# competition round on a local task repository: three miners' patches, each applied to a clean
# clone and benchmarked in a bubblewrap sandbox in an isolated worker.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need[@]}"; fi
fi

echo "== building arena and its plugins (first build: a few minutes)"
cargo build --quiet -p arena-host -p arena-replay
arena=target/debug/arena

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/replay-demo/task "$work/task"
git -C "$work/task" init -q -b main
git -C "$work/task" add -A
git -C "$work/task" -c user.name=demo -c user.email=demo@localhost commit -qm "task base"
sed "s|@REPO@|$work/task|" examples/replay-demo/params.template.json > "$work/params.json"

echo "== plugins"
"$arena" plugins list
echo
echo "== replay round: task repo $work/task, metric loss (minimize)"
"$arena" eval --plugin replay --task replay --params "$work/params.json" --isolated --timeout 120 --memory 4GiB \
  --submission examples/replay-demo/submissions/better \
  --submission examples/replay-demo/submissions/worse \
  --submission examples/replay-demo/submissions/hostile || true
echo
echo "(the hostile patch edits bench.sh, outside allowed_patch_paths, and is refused before it runs)"
