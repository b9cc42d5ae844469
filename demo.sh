#!/usr/bin/env bash
# The arena demo: installs what it needs, builds, and runs a real SN94-style replay
# competition round (competitions/demo.toml) on a local task repository: three miners' patches,
# each applied to a clean clone and benchmarked in a bubblewrap sandbox in an isolated worker,
# then the competition's rules turn their losses into the weights a validator would set.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v git >/dev/null || need+=(git)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${need[@]}"; fi
fi

echo "== building arena and its plugins (first build: a few minutes)"
cargo build --quiet -p arena-host -p arena-replay
arena="${CARGO_TARGET_DIR:-target}/debug/arena"

# The competition (competitions/demo.toml) names its task repository target/arena-demo/task.
work=target/arena-demo
rm -rf "$work" && mkdir -p "$work"
cp -r examples/replay-demo/task "$work/task"
git -C "$work/task" init -q -b main
git -C "$work/task" add -A
git -C "$work/task" -c user.name=demo -c user.email=demo@localhost commit -qm "task base"
# The task's parameters are the competition file's.
python3 -c 'import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], "rb"))["tasks"][0]["params"]))' \
  competitions/demo.toml > "$work/params.json"

echo "== plugins"
"$arena" plugins list
echo
echo "== the competition: arena check competitions/demo.toml"
"$arena" check competitions/demo.toml
echo
echo "== replay round: three miners' patches, each replayed in a sandbox (metric: loss, lower is better)"
"$arena" eval --plugin replay --task replay --params "$work/params.json" --isolated --timeout 120 --memory 4GiB \
  --submission examples/replay-demo/submissions/better \
  --submission examples/replay-demo/submissions/worse \
  --submission examples/replay-demo/submissions/hostile --json > "$work/results.json" || true
# Raw scores for `arena score`: miner uids 1, 2, 3 committed at blocks 100, 200, 300; a failed
# job is a failed task (null).
python3 - "$work/results.json" > "$work/raw.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
subs = []
for i, r in enumerate(results):
    ok = r["status"] == "ok"
    print(f"  uid {i + 1} {r['submission']}: " + (f"loss {r['output']['raw_score']}" if ok
          else f"{r['failure']['kind']}: {r['failure']['message']}"), file=sys.stderr)
    subs.append({"uid": i + 1, "hotkey": r["submission"], "block": 100 * (i + 1), "competition": "demo",
                 "tasks": {"loss": r["output"]["raw_score"] if ok else None}})
print(json.dumps({"block": 1000, "submissions": subs}))
PY
echo "(the hostile patch edits bench.sh, outside allowed_patch_paths, and is refused before it runs)"
echo
echo "== weights: arena score competitions/demo.toml --raw $work/raw.json"
"$arena" score competitions/demo.toml --raw "$work/raw.json" --state "$work/state.json"
