#!/usr/bin/env bash
# The arena demo: installs what it needs, builds, and runs four competitions with `arena round`,
# each from its file alone:
# - an SN94-style replay competition (competitions/demo.toml) on a local task repository: three
#   miners' patches, each applied to a clean clone and benchmarked in a bubblewrap sandbox in an
#   isolated worker;
# - a language-model competition (competitions/demo-llm.toml), in the same round: four tiny
#   models the project trains (arena-tiny-lm), checked against the competition's constraints,
#   then evaluated by the perplexity plugin (packed text loss, reference loss, multiple choice);
# - an SN11-style roleplay competition (competitions/demo-roleplay.toml): four tiny chat models
#   scored by the roleplay plugin with Dippy's V-A rules, a tiny local model as judge and user;
# - an SN34-style detector competition (competitions/demo-detector.toml) on the embedded chain,
#   in the real order: four miners publish tiny detectors (arena-tiny-detect) and commit them,
#   the round reads the commitments, the validator sets the report's weights, an epoch runs
#   Yuma Consensus; then the validator service (`arena validator run`) does the same by itself on
#   a chain whose blocks come with the clock, from the commitments to weights; then `arena yuma`
#   previews two epochs of an example subnet.
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

echo "== building arena and its plugins (first build: burn and wgpu alone take about 15 minutes on 2 cores)"
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug"
arena="$bin/arena"

# competitions/demo.toml names its task repository target/arena-demo/task.
work=target/arena-demo
rm -rf "$work" && mkdir -p "$work"
cp -r examples/replay-demo/task "$work/task"
git -C "$work/task" init -q -b main
git -C "$work/task" add -A
git -C "$work/task" -c user.name=demo -c user.email=demo@localhost commit -qm "task base"

echo "== plugins"
"$arena" plugins list
echo
echo "== the competitions: arena check --strict (warnings are errors, the plugins' schemas included)"
"$arena" check --strict competitions/demo.toml competitions/demo-llm.toml competitions/demo-detector.toml \
  competitions/demo-roleplay.toml
echo
echo "== language models: arena-tiny-lm trains four tiny models (llama and qwen2 layouts)"
"$bin/arena-tiny-lm" --out "$work/llm"
echo
echo "== constraints, from config.json and safetensors headers only: arena model inspect"
for m in llama-untrained llama-40 llama-300 qwen2-120; do
  "$arena" model inspect "$work/llm/models/$m" --competition competitions/demo-llm.toml | tail -n 1
done
echo
# The round's submissions, as a validator's store would list them: uid, hotkey, commit block,
# competition, and where the files are (paths relative to this file).
cat > "$work/submissions.json" <<EOF
{"block": 1000, "submissions": [
  {"uid": 1, "hotkey": "better",  "block": 100, "competition": "demo", "path": "$PWD/examples/replay-demo/submissions/better"},
  {"uid": 2, "hotkey": "worse",   "block": 200, "competition": "demo", "path": "$PWD/examples/replay-demo/submissions/worse"},
  {"uid": 3, "hotkey": "hostile", "block": 300, "competition": "demo", "path": "$PWD/examples/replay-demo/submissions/hostile"},
  {"uid": 4, "hotkey": "llama-untrained", "block": 400, "competition": "demo-llm", "path": "llm/models/llama-untrained"},
  {"uid": 5, "hotkey": "llama-40",        "block": 500, "competition": "demo-llm", "path": "llm/models/llama-40"},
  {"uid": 6, "hotkey": "llama-300",       "block": 600, "competition": "demo-llm", "path": "llm/models/llama-300"},
  {"uid": 7, "hotkey": "qwen2-120",       "block": 700, "competition": "demo-llm", "path": "llm/models/qwen2-120"}
]}
EOF
echo "== round: arena round competitions/demo.toml competitions/demo-llm.toml --submissions $work/submissions.json"
echo "   (replay: the hostile patch edits bench.sh, outside allowed_patch_paths, and is refused before it runs)"
"$arena" round competitions/demo.toml competitions/demo-llm.toml --submissions "$work/submissions.json" \
  --state "$work/state.json" --out "$work/round.json" --jobs 2
echo
echo "== roleplay (SN11's V-A scoring): arena-tiny-roleplay writes character cards and conversations in"
echo "   Dippy's format, four tiny chat models trained on them to different degrees, and a tiny judge"
"$bin/arena-tiny-roleplay" --out "$work/roleplay"
# SN11 miners commit a chat template with their model (namespace:name:chat_template:hotkey:...).
cat > "$work/submissions-roleplay.json" <<EOF
{"block": 1000, "registered": 4, "submissions": [
  {"uid": 1, "hotkey": "rp-untrained", "block": 100, "competition": "demo-roleplay", "path": "roleplay/models/rp-untrained", "metadata": {"chat_template": "chatml"}},
  {"uid": 2, "hotkey": "rp-llama-30",  "block": 200, "competition": "demo-roleplay", "path": "roleplay/models/rp-llama-30",  "metadata": {"chat_template": "chatml"}},
  {"uid": 3, "hotkey": "rp-llama-300", "block": 300, "competition": "demo-roleplay", "path": "roleplay/models/rp-llama-300", "metadata": {"chat_template": "chatml"}},
  {"uid": 4, "hotkey": "rp-qwen2-120", "block": 400, "competition": "demo-roleplay", "path": "roleplay/models/rp-qwen2-120", "metadata": {"chat_template": "qwen2dot5"}}
]}
EOF
echo "== round: arena round competitions/demo-roleplay.toml --submissions $work/submissions-roleplay.json"
echo "   (eval score and creativity, vibe, and coherence: conversations with the tiny judge as the user, then judged)"
"$arena" round competitions/demo-roleplay.toml --submissions "$work/submissions-roleplay.json" \
  --out "$work/round-roleplay.json" --jobs 2
echo
echo "== detectors on the embedded chain (a local subnet state; no node needed)"
echo "   arena-tiny-detect generates a real-vs-synthetic image benchmark and trains four tiny detectors"
"$bin/arena-tiny-detect" --out "$work/detector"
export BT_WALLET_PATH="$work/wallets"
# Miners' models are published on the Hugging Face hub and read from its cache; the demo's
# cache is local, filled as a download would fill it (models--OWNER--NAME/snapshots/REVISION).
export HF_HUB_CACHE="$work/hub" HF_HUB_OFFLINE=1
chain="$work/chain.json"
"$arena" chain local new "$chain" --netuid 1 --tempo 20 --weights-rate-limit 5 --yuma3
"$arena" wallet new-hotkey --wallet validator --seed "$(printf '%064x' 1)" --json
"$arena" chain local register --chain "$chain" --netuid 1 --wallet validator --stake 1000000000000
detectors=(detector-untrained detector-10 detector-40 detector-160)
for i in "${!detectors[@]}"; do
  m=${detectors[$i]}
  rev=$(printf '%040x' $((i + 1)))
  snapshot="$HF_HUB_CACHE/models--demo--$m/snapshots/$rev"
  mkdir -p "$snapshot" && cp -r "$work/detector/models/$m/." "$snapshot/"
  "$arena" wallet new-hotkey --wallet "$m" --seed "$(printf '%064x' $((i + 2)))" --json
  "$arena" chain local register --chain "$chain" --netuid 1 --wallet "$m"
  "$arena" commit --chain "$chain" --netuid 1 --wallet "$m" --repo "demo/$m" --revision "$rev" \
    --model-dir "$snapshot" --competition-id 2
done
"$arena" chain local advance --chain "$chain" --blocks 20
"$arena" chain commitments --chain "$chain" --netuid 1 --competition competitions/demo-detector.toml
echo
echo "== round: arena round competitions/demo-detector.toml --chain $chain (submissions from the commitments)"
"$arena" round competitions/demo-detector.toml --chain "$chain" --out "$work/round-detector.json" --jobs 2
echo
echo "== the validator sets the report's u16 weights; an epoch runs Yuma Consensus"
"$arena" chain set-weights --chain "$chain" --netuid 1 --wallet validator --report "$work/round-detector.json" \
  --journal "$work/weights-journal.json"
"$arena" chain local advance --chain "$chain" --blocks 20
"$arena" chain metagraph --chain "$chain" --netuid 1
echo
echo "== the validator service: arena validator run, on an embedded chain whose clock makes a block every 0.2 s"
echo "   the miners commit the same detectors; the validator syncs their commitments, runs the detector"
echo "   competition's round at its round block through its store's jobs, scores it, sets weights, and"
echo "   stops at --until-block; arena validator status reads its store"
vchain="$work/validator-chain.json"
"$arena" chain local new "$vchain" --netuid 1 --tempo 20 --weights-rate-limit 5 --yuma3 --block-time 0.2
"$arena" chain local register --chain "$vchain" --netuid 1 --wallet validator --stake 1000000000000
for i in "${!detectors[@]}"; do
  m=${detectors[$i]}
  rev=$(printf '%040x' $((i + 1)))
  "$arena" chain local register --chain "$vchain" --netuid 1 --wallet "$m"
  "$arena" commit --chain "$vchain" --netuid 1 --wallet "$m" --repo "demo/$m" --revision "$rev" \
    --model-dir "$HF_HUB_CACHE/models--demo--$m/snapshots/$rev" --competition-id 2 | tail -n 1
done
cat > "$work/validator.toml" <<EOF
netuid = 1
network = "local"
competitions = ["$PWD/competitions/demo-detector.toml"]
devices = ["cpu"]
store = "validator.sqlite"

[wallet]
name = "validator"
hotkey = "default"

[funding]
demo-detector = 1.0

[service]
poll = 0.5
metagraph = 5.0
round_blocks = 50
weights_retry = 2.0
EOF
block=$("$arena" chain metagraph --chain "$vchain" --netuid 1 --json | sed -n 's/^  "block": \([0-9]*\).*/\1/p')
until=$(( (block / 50 + 1) * 50 ))
"$arena" validator run --config "$work/validator.toml" --chain "$vchain" --until-block "$until"
"$arena" validator status --config "$work/validator.toml"
echo
echo "== yuma: arena yuma --input examples/yuma/epoch.json --epochs 2 (subtensor's epoch, bit for bit)"
"$arena" yuma --input examples/yuma/epoch.json --epochs 2
