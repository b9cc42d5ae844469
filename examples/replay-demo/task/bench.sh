#!/bin/sh
# A tiny research benchmark: "trains" with the learning rate in train.cfg and reports a loss.
# The replay validator reads result.json (metric_name/metric_value), like SN94's task repos.
set -e
lr=$(sed -n 's/^lr=//p' train.cfg)
steps=$(sed -n 's/^steps=//p' train.cfg)
awk -v lr="$lr" -v steps="$steps" 'BEGIN {
  if (lr <= 0 || lr >= 1) { print "validator_rejection=lr must be in (0, 1)"; exit 1 }
  if (steps > 1000) { print "validator_rejection=steps over the compute budget"; exit 1 }
  # gradient descent on f(w) = (w - 3)^2 from w = 0
  w = 0; for (i = 0; i < steps; i++) w -= lr * 2 * (w - 3)
  loss = (w - 3)^2 + 0.01
  printf "{\"metric_name\": \"loss\", \"metric_value\": %.9f, \"metrics\": {\"loss\": %.9f, \"w\": %.9f}}\n", loss, loss, w > "result.json"
  printf "step %d loss: %.9f\n", steps, loss
}'
