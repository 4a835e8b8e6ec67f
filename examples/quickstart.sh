#!/usr/bin/env bash
# A short working example on the embedded SQLite store, in a fresh temporary directory:
# run a small pipeline that records its sources, steps, dataset, reviews and build; show
# what the opt-out step removed and the review state; check the dataset against the
# training gates; prove a customer is not in the dataset; verify everything.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mlprov-quickstart.XXXXXX")
cd "$work"
export MLPROV_ACTOR=${MLPROV_ACTOR:-alice@example.com}

mlprov init
python3 "$here/pipeline.py"
mlprov log
step=$(mlprov log --type transform --name opt-out-removal-v2 --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["digest"])')
mlprov changes "$step"
mlprov status support-chat-export@2026-05-22
mlprov check support-classifier-training --use training
mlprov prove --subject ann@example.com --in support-classifier-training --out ann.json
mlprov check-proof ann.json
mlprov checkpoint
mlprov verify
echo "the ledger is in $work/.mlprov"
