#!/usr/bin/env bash
# The README example: one img2img call against a running sdgate, then download the first output.
# Usage: scripts/smoke_img2img.sh [BASE_URL] [API_KEY]   (defaults: http://127.0.0.1:7860, "any")
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:-http://127.0.0.1:7860}"
key="${2:-any}"
answer=$(curl -sS "$base/api/v6/images/img2img" -H 'Content-Type: application/json' -d @- <<JSON
{"key": "$key", "model_id": "tiny-sd15", "prompt": "a red cat", "negative_prompt": null,
 "init_image": "$(base64 -w0 docs/example-init.png)", "base64": "yes",
 "samples": "1", "num_inference_steps": "8", "strength": 0.7, "guidance_scale": 7.5, "seed": null}
JSON
)
echo "$answer"
link=$(printf '%s' "$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin)["output"][0])')
curl -sS -f -o /tmp/sdgate-smoke.base64 "$link"
echo "downloaded $link ($(wc -c < /tmp/sdgate-smoke.base64) bytes of base64 PNG)"
