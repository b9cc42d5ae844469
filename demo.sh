#!/usr/bin/env bash
# The arena demo: installs what it needs, builds, and runs two competition rounds:
# - a real SN94-style replay round (competitions/demo.toml) on a local task repository: three
#   miners' patches, each applied to a clean clone and benchmarked in a bubblewrap sandbox in an
#   isolated worker;
# - a language-model round (competitions/demo-llm.toml): four tiny models the project trains
#   (arena-tiny-lm), checked against the competition's constraints, then evaluated by the
#   perplexity plugin (packed text loss, reference loss, multiple choice);
# - an SN34-style detector round (competitions/demo-detector.toml): a generated real-vs-synthetic
#   image benchmark and four tiny detectors (arena-tiny-detect), scored by the detector plugin
#   with gasbench's sn34 score;
# then the competitions' rules turn the scores into the weights a validator would set.
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

echo "== building arena and its plugins (first build: burn and wgpu alone take about 15 minutes on 2 cores)"
cargo build --quiet -p arena-host -p arena-replay -p arena-perplexity -p arena-llm -p arena-detector --bins
arena="${CARGO_TARGET_DIR:-target}/debug/arena"
tiny="${CARGO_TARGET_DIR:-target}/debug/arena-tiny-lm"
tinyd="${CARGO_TARGET_DIR:-target}/debug/arena-tiny-detect"

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
echo "== language models: arena-tiny-lm trains four tiny models (llama and qwen2 layouts)"
"$tiny" --out "$work/llm"
models=(llama-untrained llama-40 llama-300 qwen2-120)
echo
echo "== constraints, from config.json and safetensors headers only: arena model inspect"
for m in "${models[@]}"; do
  "$arena" model inspect "$work/llm/models/$m" --competition competitions/demo-llm.toml | tail -n 1
done
echo
subs=()
for m in "${models[@]}"; do subs+=(--submission "$work/llm/models/$m"); done
for task in text_loss reference_loss multiple_choice; do
  echo "== $task: perplexity plugin, four models, each in an isolated worker"
  # The task's parameters and dataset are the competition file's.
  dataset=$(python3 - competitions/demo-llm.toml "$task" "$work/llm-$task.params.json" <<'PY'
import json, sys, tomllib
t = next(t for t in tomllib.load(open(sys.argv[1], "rb"))["tasks"] if t["name"] == sys.argv[2])
json.dump(t["params"], open(sys.argv[3], "w"))
print(t["dataset"])
PY
)
  "$arena" eval --plugin perplexity --task "$task" --params "$work/llm-$task.params.json" --samples "$dataset" \
    --competition competitions/demo-llm.toml \
    --isolated --timeout 300 --memory 8GiB "${subs[@]}" --json > "$work/llm-$task.json" || true
done
# Raw scores of both competitions for one `arena score` call: the language models are uids 4 to 7.
python3 - "$work" "${models[@]}" > "$work/raw-all.json" <<'PY'
import json, sys
work, models = sys.argv[1], sys.argv[2:]
raw = json.load(open(f"{work}/raw.json"))
tasks = ["text_loss", "reference_loss", "multiple_choice"]
results = {t: json.load(open(f"{work}/llm-{t}.json"))["results"] for t in tasks}
for i, m in enumerate(models):
    scores = {}
    for t in tasks:
        r = results[t][i]
        scores[t] = r["output"]["raw_score"] if r["status"] == "ok" else None
    print(f"  uid {i + 4} {m}: " + ", ".join(f"{t} {v:.4f}" if v is not None else f"{t} failed" for t, v in scores.items()), file=sys.stderr)
    raw["submissions"].append({"uid": i + 4, "hotkey": m, "block": 100 * (i + 4), "competition": "demo-llm", "tasks": scores})
print(json.dumps(raw))
PY
echo
echo "== weights: arena score competitions/demo.toml competitions/demo-llm.toml --raw $work/raw-all.json"
"$arena" score competitions/demo.toml competitions/demo-llm.toml --raw "$work/raw-all.json" --state "$work/state.json"
echo
echo "== detectors: arena-tiny-detect generates a real-vs-synthetic image benchmark and trains four tiny detectors"
"$tinyd" --out "$work/detector"
detectors=(detector-untrained detector-10 detector-40 detector-160)
dsubs=()
for m in "${detectors[@]}"; do dsubs+=(--submission "$work/detector/models/$m"); done
dataset=$(python3 - competitions/demo-detector.toml "$work/detector.params.json" <<'PY'
import json, sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))["tasks"][0]
json.dump(t["params"], open(sys.argv[2], "w"))
print(t["dataset"])
PY
)
echo "== sn34: detector plugin, four detectors, each in an isolated worker"
"$arena" eval --plugin detector --task image --params "$work/detector.params.json" --samples "$dataset" \
  --isolated --timeout 300 --memory 4GiB "${dsubs[@]}" --json > "$work/detector.json" || true
python3 - "$work/detector.json" "${detectors[@]}" > "$work/raw-detector.json" <<'PY'
import json, sys
results, models = json.load(open(sys.argv[1]))["results"], sys.argv[2:]
subs = []
for i, (m, r) in enumerate(zip(models, results)):
    ok = r["status"] == "ok"
    if ok:
        x = r["output"]["metrics"]
        print(f"  uid {i + 1} {m}: sn34 {x['sn34_score']:.4f} (accuracy {x['accuracy']:.4f}, MCC {x['binary_mcc']:.4f}, "
              f"Brier {x['binary_brier']:.4f})", file=sys.stderr)
    else:
        print(f"  uid {i + 1} {m}: {r['failure']['kind']}: {r['failure']['message']}", file=sys.stderr)
    subs.append({"uid": i + 1, "hotkey": m, "block": 100 * (i + 1), "competition": "demo-detector",
                 "tasks": {"sn34": r["output"]["metrics"]["sn34_score"] if ok else None}})
print(json.dumps({"block": 1000, "submissions": subs}))
PY
echo
echo "== weights: arena score competitions/demo-detector.toml --raw $work/raw-detector.json"
"$arena" score competitions/demo-detector.toml --raw "$work/raw-detector.json" --state "$work/state-detector.json"
echo
echo "== chain: the embedded chain (a local subnet state; no node needed): miners commit, the validator sets weights, an epoch runs Yuma Consensus"
export BT_WALLET_PATH="$work/wallets"
rm -rf "$BT_WALLET_PATH" "$work/chain.json" "$work/weights-journal.json"
names=(validator "${detectors[@]}")
neurons=()
for i in "${!names[@]}"; do
  addr=$("$arena" wallet new-hotkey --wallet "${names[$i]}" --hotkey default --seed "$(printf '%064x' $((i + 1)))" | awk '{print $2}')
  stake=0; [ "$i" = 0 ] && stake=1000000000000
  neurons+=(--neuron "$addr:$addr:$stake")
done
"$arena" chain local new "$work/chain.json" --netuid 1 --tempo 20 --weights-rate-limit 5 --yuma3 "${neurons[@]}"
"$arena" chain local advance --chain "$work/chain.json" --blocks 20
for i in 1 2 3 4; do
  "$arena" commit --chain "$work/chain.json" --netuid 1 --wallet "${names[$i]}" --repo "demo/${names[$i]}" \
    --revision "$(printf '%040x' "$i")" --model-dir "$work/detector/models/${names[$i]}" --competition-id 2
done
"$arena" chain commitments --chain "$work/chain.json" --netuid 1 --competition competitions/demo-detector.toml
weights=$("$arena" score competitions/demo-detector.toml --raw "$work/raw-detector.json" --json |
  python3 -c 'import json,sys; print(",".join("%d=%r" % (w["uid"], w["weight"]) for w in json.load(sys.stdin)["weights"]))')
"$arena" chain set-weights --chain "$work/chain.json" --netuid 1 --wallet validator --weights "$weights" --journal "$work/weights-journal.json"
"$arena" chain local advance --chain "$work/chain.json" --blocks 20
"$arena" chain metagraph --chain "$work/chain.json" --netuid 1
echo
echo "== yuma: arena yuma --input examples/yuma/epoch.json --epochs 2 (subtensor's epoch, bit for bit)"
"$arena" yuma --input examples/yuma/epoch.json --epochs 2
