#!/usr/bin/env python3
"""A demo LLM provider for `scripts/dev`: an OpenAI-compatible API on 127.0.0.1 that answers
without any account, so a newcomer can try the whole flow offline.

It answers briefly and in plain words (it repeats what it was asked), bills what it really read
and wrote (about four bytes a token, as real tokenizers do for English, never more output than
`max_tokens` allows), streams word by word with the usage in a last chunk when
`stream_options.include_usage` asks for it, and serves chat completions, legacy completions and
embeddings. The test suites use honest_upstream.py instead, which bills every token a request
allows.
"""
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8004


def tokens(text):
    return max(1, (len(text.encode()) + 3) // 4)


def limit(req):
    return int(req.get("max_completion_tokens") or req.get("max_tokens") or 256)


def reply_to(prompt, max_tokens):
    said = " ".join(prompt.split())[:160]
    words = f"Hello from the demo model. You said: {said}".split(" ")
    out = []
    for word in words:
        if tokens(" ".join(out + [word])) > max_tokens:
            break
        out.append(word)
    return " ".join(out) or words[0][: max_tokens * 4]


def last_user_text(messages):
    for message in reversed(messages or []):
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if message.get("role") == "user" and isinstance(content, str):
            return content
    return ""


class Demo(BaseHTTPRequestHandler):
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
            return self._send(200, {"object": "list", "data": [
                {"id": "demo", "object": "model", "created": 0, "owned_by": "demo"}]})
        self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self._send(400, {"error": {"message": "the body is not JSON"}})
        path = self.path.rstrip("/")
        if path.endswith("/chat/completions"):
            return self._chat(req)
        if path.endswith("/completions"):
            return self._completion(req)
        if path.endswith("/embeddings"):
            return self._embeddings(req)
        self._send(404, {"error": {"message": "not found"}})

    def _chat(self, req):
        messages = req.get("messages") or []
        prompt = tokens(json.dumps(messages))
        choices = int(req.get("n") or 1)
        text = reply_to(last_user_text(messages), limit(req))
        usage = {"prompt_tokens": prompt, "completion_tokens": tokens(text) * choices,
                 "total_tokens": prompt + tokens(text) * choices}
        cid = "chatcmpl-demo-" + uuid.uuid4().hex[:16]
        head = {"id": cid, "created": int(time.time()), "model": req.get("model")}
        if not req.get("stream"):
            return self._send(200, {**head, "object": "chat.completion", "usage": usage, "choices": [
                {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                for i in range(choices)]})
        self._stream(req, usage, [
            {**head, "object": "chat.completion.chunk",
             "choices": [{"index": i, "delta": {"content": piece}, "finish_reason": None}]}
            for i in range(choices) for piece in pieces(text)], {**head, "object": "chat.completion.chunk"})

    def _completion(self, req):
        prompts = req.get("prompt")
        if not isinstance(prompts, list) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        choices = int(req.get("best_of") or req.get("n") or 1)
        texts = [reply_to(p if isinstance(p, str) else "(tokens)", limit(req)) for p in prompts]
        prompt = sum(tokens(p) if isinstance(p, str) else len(p or []) for p in prompts)
        written = sum(tokens(t) for t in texts) * choices
        usage = {"prompt_tokens": prompt, "completion_tokens": written, "total_tokens": prompt + written}
        shown = int(req.get("n") or 1)
        head = {"id": "cmpl-demo-" + uuid.uuid4().hex[:16], "created": int(time.time()), "model": req.get("model")}
        entries = [(p * shown + i, t) for p, t in enumerate(texts) for i in range(shown)]
        if not req.get("stream"):
            return self._send(200, {**head, "object": "text_completion", "usage": usage, "choices": [
                {"index": i, "text": t, "finish_reason": "stop", "logprobs": None} for i, t in entries]})
        self._stream(req, usage, [
            {**head, "object": "text_completion",
             "choices": [{"index": i, "text": piece, "finish_reason": None, "logprobs": None}]}
            for i, t in entries for piece in pieces(t)], {**head, "object": "text_completion"})

    def _embeddings(self, req):
        given = req.get("input")
        if isinstance(given, str) or (isinstance(given, list) and given and isinstance(given[0], int)):
            given = [given]
        items = given if isinstance(given, list) else []
        used = sum(tokens(i) if isinstance(i, str) else len(i) for i in items)
        self._send(200, {"object": "list", "model": req.get("model"), "data": [
            {"object": "embedding", "index": k, "embedding": [round(0.1 * (k + 1), 3)] * 8}
            for k in range(len(items))], "usage": {"prompt_tokens": used, "total_tokens": used}})

    def _stream(self, req, usage, chunks, last):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in chunks:
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
                time.sleep(0.02)
            if (req.get("stream_options") or {}).get("include_usage"):
                self.wfile.write(b"data: " + json.dumps({**last, "choices": [], "usage": usage}).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, fmt, *a):
        pass


def pieces(text):
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Demo).serve_forever()
