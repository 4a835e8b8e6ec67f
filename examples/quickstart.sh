#!/usr/bin/env bash
# A short working example on the embedded SQLite store, in a fresh temporary directory:
# record a source and a transform, sign a checkpoint, verify, and prove an event is in the log.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/mlprov-quickstart.XXXXXX")
cd "$work"
export MLPROV_ACTOR=${MLPROV_ACTOR:-alice@example.com}

mlprov init
src=$(mlprov record source --json --payload '{
  "name": "support-chat-export", "version": "2026-05-22",
  "rights_basis": "contract-2024-17 §4 (model training permitted)",
  "license": "LicenseRef-proprietary", "owner": "support-ops", "personal_data": true,
  "collected": ["2024-01", "2026-05"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
mlprov record transform --parent "$src" --payload '{"name": "pii-redaction-v3", "params": {"patterns": ["email", "phone"]}}'
mlprov log
mlprov checkpoint --out checkpoint.txt
mlprov verify
mlprov proof inclusion "$src" --out inclusion.json
mlprov proof check inclusion.json --key .mlprov/keys/*.pub
echo "the ledger is in $work/.mlprov"
