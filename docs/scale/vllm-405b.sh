#!/bin/bash
# Llama-3.1-405B served by vLLM with tensor parallelism over the 8 GPUs of one node, evaluated by
# llama-eval's OpenAI-compatible runner. bf16 weights are ~810 GB: 8 x H200 (141 GB) hold them;
# on 8 x 80 GB GPUs serve meta-llama/Llama-3.1-405B-FP8 instead, or add --pipeline-parallel-size 2
# over two nodes.
set -euo pipefail

vllm serve meta-llama/Llama-3.1-405B --tensor-parallel-size 8 --max-model-len 8192 --port 8000 &
server=$!
trap 'kill "${server}"' EXIT

# Loading 405B takes minutes; /v1/models answers once the server is ready.
until curl -sf http://localhost:8000/v1/models > /dev/null; do sleep 10; done

# The model name is the one vLLM serves it under (GET /v1/models). Loglikelihood tasks use prompt
# logprobs (echo + logprobs), which vLLM's /v1/completions supports.
npx llama-eval run --suite commonsense arithmetic --backend openai --base-url http://localhost:8000 \
  --model meta-llama/Llama-3.1-405B --request-timeout 600 --retries 5 --out runs/llama-3.1-405b

# Several nodes, each with its own vLLM server: give each the same flags plus --shard i/N, then merge.
npx llama-eval run --suite commonsense arithmetic --backend openai --base-url http://localhost:8000 \
  --model meta-llama/Llama-3.1-405B --shard 0/2 --out runs/llama-3.1-405b-shard-0
