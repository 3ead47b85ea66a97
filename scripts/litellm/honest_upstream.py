#!/usr/bin/env python3
"""A worst-case OpenAI-compatible upstream on 127.0.0.1 for the end-to-end and contract suites.

It bills the way a real provider can: every choice uses all of its output limit
(max_completion_tokens, else max_tokens, else 4096), `n` choices are all billed, prompt tokens
follow the size of the messages and tools sent (one token per byte, the most a byte-level tokenizer can make;
UPSTREAM_BYTES_PER_TOKEN changes it), and streams are
slow enough to walk away from (UPSTREAM_CHUNK_DELAY seconds between chunks, default 0.05;
a message containing "[slow:S]" waits S seconds before answering, to make a request run long;
one containing "[id:X]" is answered with the id X, as a provider that hands out an id twice).
Usage comes in the last stream chunk only when stream_options.include_usage asks for it.
Embeddings (`/embeddings`) bill their input the same way: a token per byte of each string, or the
length of each token array. Legacy completions (`/completions`) bill each prompt so (a string, a
token array, or a list of either), and every prompt's `best_of` (else `n`) completions their whole
`max_tokens` (OpenAI's default for this API: 16), streamed or not.
"""
import json
import os
import re
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
CHUNK_DELAY = float(os.environ.get("UPSTREAM_CHUNK_DELAY", "0.05"))
# Tokens per streamed chunk: a stream of 4096 tokens is 64 chunks.
TOKENS_PER_CHUNK = 64
DEFAULT_LIMIT = 4096
BYTES_PER_TOKEN = int(os.environ.get("UPSTREAM_BYTES_PER_TOKEN", "1"))


def limits(req):
    per_choice = req.get("max_completion_tokens") or req.get("max_tokens") or DEFAULT_LIMIT
    choices = req.get("n") or 1
    sent = json.dumps(req.get("messages", [])) + (json.dumps(req["tools"]) if req.get("tools") else "")
    prompt = max(1, len(sent.encode()) // BYTES_PER_TOKEN)
    return int(per_choice), int(choices), prompt


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            return self._send(200, {"object": "list", "data": [{"id": "fake-gpt", "object": "model", "created": 0, "owned_by": "fake"}]})
        self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(n) or b"{}")
        if self.path.rstrip("/").endswith("/embeddings"):
            return self._embeddings(req)
        if self.path.rstrip("/").endswith("/completions") and not self.path.rstrip("/").endswith("/chat/completions"):
            return self._completions(req)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self._send(404, {"error": {"message": "not found"}})
        slow = re.search(r"\[slow:(\d+(?:\.\d+)?)\]", json.dumps(req.get("messages", [])))
        if slow:
            time.sleep(float(slow.group(1)))
        per_choice, choices, prompt = limits(req)
        usage = {"prompt_tokens": prompt, "completion_tokens": per_choice * choices,
                 "total_tokens": prompt + per_choice * choices}
        fixed = re.search(r"\[id:([A-Za-z0-9_-]+)\]", json.dumps(req.get("messages", [])))
        cid = fixed.group(1) if fixed else "chatcmpl-" + uuid.uuid4().hex[:16]
        model = req.get("model")
        if not req.get("stream"):
            content = "x " * min(per_choice, 2000)
            return self._send(200, {
                "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": "length"}
                            for i in range(choices)],
                "usage": usage})
        def chunk(i, text, last):
            return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                    "choices": [{"index": i, "delta": {"content": text}, "finish_reason": "length" if last else None}]}
        self._stream(req, choices, per_choice, chunk,
                     {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                      "choices": [], "usage": usage})

    def _stream(self, req, count, per_choice, chunk, usage_chunk):
        """Streams `count` choices of `per_choice` tokens each, then the usage if asked for."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for i in range(count):
                left = per_choice
                while left > 0:
                    step = min(TOKENS_PER_CHUNK, left)
                    left -= step
                    self.wfile.write(b"data: " + json.dumps(chunk(i, "x " * step, left == 0)).encode() + b"\n\n")
                    self.wfile.flush()
                    time.sleep(CHUNK_DELAY)
            if (req.get("stream_options") or {}).get("include_usage"):
                self.wfile.write(b"data: " + json.dumps(usage_chunk).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _embeddings(self, req):
        given = req.get("input")
        # One string, a list of strings, one token array, or a list of token arrays.
        if isinstance(given, str) or (isinstance(given, list) and given and isinstance(given[0], int)):
            given = [given]
        items = given if isinstance(given, list) else []
        tokens = sum(max(1, len(i.encode()) // BYTES_PER_TOKEN) if isinstance(i, str) else len(i) for i in items)
        self._send(200, {"object": "list", "model": req.get("model"),
                         "data": [{"object": "embedding", "index": n, "embedding": [0.5] * 8} for n in range(len(items))],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _completions(self, req):
        prompts = req.get("prompt")
        if not isinstance(prompts, list) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        per_choice = int(req.get("max_tokens") or 16)
        shown = int(req.get("n") or 1)
        generated = max(int(req.get("best_of") or 1), shown)
        prompt = sum(max(1, len(p.encode()) // BYTES_PER_TOKEN) if isinstance(p, str) else len(p or []) for p in prompts)
        written = per_choice * generated * len(prompts)
        usage = {"prompt_tokens": prompt, "completion_tokens": written, "total_tokens": prompt + written}
        head = {"id": "cmpl-" + uuid.uuid4().hex[:16], "created": int(time.time()), "model": req.get("model")}
        count = shown * len(prompts)
        if not req.get("stream"):
            return self._send(200, {**head, "object": "text_completion", "usage": usage, "choices": [
                {"index": i, "text": "x " * min(per_choice, 2000), "finish_reason": "length", "logprobs": None}
                for i in range(count)]})
        def chunk(i, text, last):
            return {**head, "object": "text_completion", "choices": [
                {"index": i, "text": text, "finish_reason": "length" if last else None, "logprobs": None}]}
        self._stream(req, count, per_choice, chunk, {**head, "object": "text_completion", "choices": [], "usage": usage})

    def log_message(self, fmt, *a):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
