#!/usr/bin/env bash
# The README example: one img2img call against a running sdgate, then download the first output.
# A job still running when the call returns ("status": "processing") is followed: its fetch_result is polled
# with the key until it succeeds (at most SMOKE_WAIT seconds, default 300).
#
# Usage: scripts/smoke_img2img.sh [BASE_URL | PORT] [API_KEY]   (defaults: http://127.0.0.1:7860, "any")
#   scripts/smoke_img2img.sh                              # ./scripts/serve on its default port
#   scripts/smoke_img2img.sh http://127.0.0.1:8000        # ./scripts/serve --port 8000
#   scripts/smoke_img2img.sh 8000 my-key                  # the same; a server started with SDGATE_API_KEYS=my-key
# SMOKE_MODEL picks the model (default tiny-sd15); SMOKE_OUT the download (default /tmp/sdgate-smoke.base64).
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:-http://127.0.0.1:7860}"
key="${2:-any}"
model="${SMOKE_MODEL:-tiny-sd15}"
wait_s="${SMOKE_WAIT:-300}"
case "$base" in
    *://*) ;;
    :[0-9]*) base="http://127.0.0.1$base" ;;
    [0-9]*) base="http://127.0.0.1:$base" ;;
    *) base="http://$base" ;;
esac
base="${base%/}"
out="${SMOKE_OUT:-/tmp/sdgate-smoke.base64}"

# field NAME: print one field of the JSON answer on stdin ("" when absent; output[0] as "output0").
field() {
    python3 -c '
import json, sys
answer = json.load(sys.stdin)
name = sys.argv[1]
if name == "output0":
    print((answer.get("output") or [""])[0])
else:
    value = answer.get(name, "")
    print(value if value is not None else "")
' "$1"
}

answer=$(curl -sS --max-time 600 "$base/api/v6/images/img2img" -H 'Content-Type: application/json' -d @- <<JSON
{"key": "$key", "model_id": "$model", "prompt": "a red cat", "negative_prompt": null,
 "init_image": "$(base64 -w0 docs/example-init.png)", "base64": "yes",
 "samples": "1", "num_inference_steps": "8", "strength": 0.7, "guidance_scale": 7.5, "seed": null}
JSON
) || { echo "no answer from sdgate at $base: start one with ./scripts/serve, or pass its URL or port" \
            "(e.g. scripts/smoke_img2img.sh http://127.0.0.1:8000)" >&2; exit 1; }
echo "$answer"
status=$(printf '%s' "$answer" | field status)
if [ "$status" = "processing" ]; then
    fetch=$(printf '%s' "$answer" | field fetch_result)
    deadline=$((SECONDS + wait_s))
    while [ "$status" = "processing" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "job still processing after ${wait_s} s (raise SMOKE_WAIT to wait longer): $fetch" >&2
            exit 1
        fi
        sleep 1
        answer=$(curl -sS --max-time 60 -X POST "$fetch" -H 'Content-Type: application/json' -d "{\"key\": \"$key\"}")
        status=$(printf '%s' "$answer" | field status)
    done
    echo "fetched $fetch: $answer"
fi
if [ "$status" != "success" ]; then
    echo "img2img failed: $(printf '%s' "$answer" | field message)" >&2
    exit 1
fi
link=$(printf '%s' "$answer" | field output0)
curl -sS -f -o "$out" "$link"
echo "downloaded $link ($(wc -c < "$out") bytes of base64 PNG)"
