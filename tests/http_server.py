#!/usr/bin/env python3
"""http_server.py -- an OpenAI-compatible test server for plumb's HTTP layer.

    python3 tests/http_server.py [--dim 32] [--key KEY] [--timeout 120] [--verbose]

Listens on 127.0.0.1, on a port the system picks, and prints that port on
the first line of stdout. Exits when stdin reaches end of file (its parent
test exited or closed the pipe) or after --timeout seconds, whichever
comes first. Python standard library only.

Endpoints
  POST /v1/embeddings        {"model", "input": str | [str]} -> OpenAI list of embeddings
  POST /v1/chat/completions  {"model", "messages", "stream"?, "max_tokens"?, "stream_options"?}
  POST /v1/rerank            {"model", "query", "documents", "top_n"?} -> Cohere/Jina shape
  GET  /stats[?model=NAME]   {"requests": {model: count}} or {"model", "requests": count}

Deterministic answers, so a client can check them independently:
  embedding(text): the text's UTF-8 bytes, A-Z lowered to a-z; each maximal run
    of [a-z0-9] is a token; h = FNV-1a 64 of the token's bytes; v[h % dim] +=
    (-1 if bit 32 of h is set else +1); then v / |v| (all zeros when no token).
  chat answer: "You said: " + the last user message, streamed 3 characters per
    chunk; max_tokens counts chunks (finish_reason "length" when it cuts).
  rerank score: dot(embedding(query), embedding(document)).

Failure modes, chosen per request by the model name MODE[:TAG] (the TAG makes
counters separate between test cases; every POST counts under the full name):
  fail-429-then-ok   1st request: 429 with Retry-After: 1, then normal
  fail-500-twice     requests 1-2: 500 with an OpenAI error body, then normal
  fail-500-always    every request: 500
  400-error          400 {"error": {"message": ...}}
  400-string         400 {"error": "..."}
  502-text           502 with a text/plain body
  slow-first-byte    sleeps 3 s before answering
  malformed-json     200 with a broken JSON body
  drop-before-first  1st request: connection closed without any answer
  drop-mid-stream    chat: three content chunks, then the connection is cut
  slow-stream        chat: one content chunk, then 3 s of silence
  stream-error       chat: one content chunk, then an error event
  sse-variants       chat: CRLF line ends, "data:" without space, comments,
                     writes split inside lines and inside UTF-8 sequences
  no-done            chat: ends after finish_reason, without "data: [DONE]"
  hang-after-done    chat: keeps the connection silent for 3 s after [DONE]
  not-stream         chat: a plain JSON completion although stream was asked
  judge              chat: a relevance grade for rerank_llm.c's message: "3" when
                     the passage holds the query's first word, "1" when only its
                     second, else "0"
  judge-text         chat: "The passage seems relevant." (no grade)
  bad-dimension      embeddings of dim + 1 numbers
  mixed-dimension    the second embedding of a batch is one number shorter
  shuffled           embeddings in reverse order (with their indexes), after a
                     random delay of up to 40 ms
  tei-shape          rerank: a bare list [{"index", "score"}]
  missing-score      rerank: the last document's result left out
  400-at-3           the 3rd request: 400 (not retried); all others normal
When --key is given, a request without "Authorization: Bearer KEY" gets 401.
"""
import argparse
import json
import math
import os
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ARGS = None
COUNTS = {}
LOCK = threading.Lock()


def count(model):
    with LOCK:
        COUNTS[model] = COUNTS.get(model, 0) + 1
        return COUNTS[model]


def embedding(text, dim):
    raw = bytes(c + 32 if 65 <= c <= 90 else c for c in text.encode("utf-8", "replace"))
    v = [0.0] * dim
    tok = bytearray()
    for c in raw + b" ":
        if 97 <= c <= 122 or 48 <= c <= 57:
            tok.append(c)
            continue
        if tok:
            h = 0xCBF29CE484222325
            for b in tok:
                h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
            v[h % dim] += -1.0 if (h >> 32) & 1 else 1.0
            tok = bytearray()
    s = 0.0
    for x in v:  # in index order, as the C reference sums
        s += x * x
    norm = math.sqrt(s)
    return [x / norm for x in v] if norm > 0 else v


def judge(user):
    """The "judge" chat mode's grade for rerank_llm.c's user message
    ("Query: Q\n\nPassage:\nP\n\nGrade (0-3):"): 3 when the passage
    holds the query's first word, 1 when only its second, else 0."""
    q = user.split("\n", 1)[0][len("Query: "):].lower().split()
    p = user.split("Passage:\n", 1)[-1].rsplit("\n\nGrade", 1)[0].lower()
    g = 3 if q and q[0] in p else 1 if len(q) > 1 and q[1] in p else 0
    return "%d" % g


def oai_error(message, etype="invalid_request_error", code=None):
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("http_server: " + (fmt % args) + "\n")

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    # -- responses ---------------------------------------------------
    def send_json(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_raw(status, body, "application/json", extra)

    def send_raw(self, status, body, ctype, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def drop(self):
        """Close the connection at once, whatever was sent so far."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # -- routing -----------------------------------------------------
    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/stats":
            self.send_json(404, oai_error("no such endpoint: " + url.path))
            return
        q = parse_qs(url.query)
        with LOCK:
            if "model" in q:
                m = q["model"][0]
                self.send_json(200, {"model": m, "requests": COUNTS.get(m, 0)})
            else:
                self.send_json(200, {"requests": dict(COUNTS)})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        path = urlparse(self.path).path
        try:
            req = json.loads(raw)
        except ValueError as e:
            count("")
            self.send_json(400, oai_error("We could not parse the JSON body of your request: %s" % e))
            return
        if not isinstance(req, dict) or not isinstance(req.get("model"), str) or not req["model"]:
            count("")
            self.send_json(400, oai_error("you must provide a model parameter"))
            return
        model = req["model"]
        nth = count(model)
        if ARGS.key and self.headers.get("Authorization") != "Bearer " + ARGS.key:
            self.send_json(401, oai_error("Incorrect API key provided. You can find your API key "
                                          "at https://example.invalid/keys.", code="invalid_api_key"))
            return
        mode = model.split(":", 1)[0]
        if self.common_failure(mode, nth):
            return
        if path == "/v1/embeddings":
            self.embeddings(req, model, mode)
        elif path == "/v1/chat/completions":
            self.chat(req, model, mode)
        elif path == "/v1/rerank":
            self.rerank(req, model, mode)
        else:
            self.send_json(404, oai_error("no such endpoint: " + path))

    def common_failure(self, mode, nth):
        if mode == "fail-429-then-ok" and nth == 1:
            self.send_json(429, oai_error("Rate limit reached for requests", "requests",
                                          "rate_limit_exceeded"), {"Retry-After": "1"})
        elif mode == "fail-500-twice" and nth <= 2:
            self.send_json(500, oai_error("The server had an error while processing your "
                                          "request (attempt %d)" % nth, "server_error"))
        elif mode == "fail-500-always":
            self.send_json(500, oai_error("The server had an error while processing your "
                                          "request", "server_error"))
        elif mode == "400-at-3" and nth == 3:
            self.send_json(400, oai_error("input 3 rejected (test: 400-at-3)"))
        elif mode == "400-error":
            self.send_json(400, oai_error("This model's maximum context length is 8192 tokens, "
                                          "however you requested 9000 tokens"))
        elif mode == "400-string":
            self.send_json(400, {"error": "Input validation error: inputs cannot be empty",
                                 "error_type": "Validation"})
        elif mode == "502-text":
            self.send_raw(502, b"Bad Gateway\r\nupstream\tunavailable\n", "text/plain")
        elif mode == "drop-before-first" and nth == 1:
            self.drop()
        elif mode == "malformed-json":
            self.send_raw(200, b'{"object":"list","data":[{"object":"embedding","index":0,'
                               b'"embedding":[0.25,,0.5]}],"model":"m"}', "application/json")
        else:
            if mode == "slow-first-byte":
                time.sleep(3)
            return False
        return True

    # -- embeddings --------------------------------------------------
    def embeddings(self, req, model, mode):
        inp = req.get("input")
        if isinstance(inp, str):
            inp = [inp]
        if not isinstance(inp, list) or not inp or not all(isinstance(s, str) for s in inp):
            self.send_json(400, oai_error("'input' must be a string or a non-empty list of "
                                          "strings", code="invalid_input"))
            return
        dim = ARGS.dim + (1 if mode == "bad-dimension" else 0)
        data = [{"object": "embedding", "index": i, "embedding": embedding(s, dim)}
                for i, s in enumerate(inp)]
        if mode == "mixed-dimension" and len(data) > 1:
            data[1]["embedding"] = data[1]["embedding"][:-1]
        if mode == "shuffled":
            data.reverse()
            time.sleep(random.random() * 0.04)
        ntok = sum(len(s.split()) for s in inp)
        self.send_json(200, {"object": "list", "data": data, "model": model,
                             "usage": {"prompt_tokens": ntok, "total_tokens": ntok}})

    # -- chat --------------------------------------------------------
    def chat(self, req, model, mode):
        msgs = req.get("messages")
        roles = ("system", "developer", "user", "assistant", "tool")
        if (not isinstance(msgs, list) or not msgs or
                not all(isinstance(m, dict) and m.get("role") in roles and
                        isinstance(m.get("content"), (str, list)) for m in msgs)):
            self.send_json(400, oai_error("'messages' must be a non-empty list of "
                                          "{role, content} objects"))
            return
        users = [m["content"] for m in msgs if m["role"] == "user" and isinstance(m["content"], str)]
        if not users:
            self.send_json(400, oai_error("no user message"))
            return
        text = "You said: " + users[-1]
        if mode == "judge":
            text = judge(users[-1])
        elif mode == "judge-text":
            text = "The passage seems relevant."
        pieces = [text[i:i + 3] for i in range(0, len(text), 3)]
        finish = "stop"
        mt = req.get("max_tokens")
        if isinstance(mt, int) and 0 < mt < len(pieces):
            pieces, finish = pieces[:mt], "length"
        usage = {"prompt_tokens": sum(len(m["content"].split()) for m in msgs
                                      if isinstance(m["content"], str)),
                 "completion_tokens": len(pieces)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not req.get("stream") or mode == "not-stream":
            self.send_json(200, {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                                 "model": model, "usage": usage,
                                 "choices": [{"index": 0, "finish_reason": finish,
                                              "message": {"role": "assistant",
                                                          "content": "".join(pieces)}}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        variants = mode == "sse-variants"
        eol = b"\r\n" if variants else b"\n"

        def event(obj):
            data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=not variants)
            line = (b"data:" if variants else b"data: ") + data.encode() + eol + eol
            if variants:  # a comment, and the event split in three writes
                self.chunk(b": keep-alive" + eol)
                a, b = len(line) // 3, 2 * len(line) // 3
                for part in (line[:a], line[a:b], line[b:]):
                    self.chunk(part)
                    time.sleep(0.002)
            else:
                self.chunk(line)

        def delta(d, fin=None):
            return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
                    "model": model, "choices": [{"index": 0, "delta": d, "finish_reason": fin}]}

        event(delta({"role": "assistant", "content": ""}))
        for i, p in enumerate(pieces):
            if mode == "drop-mid-stream" and i == 3:
                self.drop()
                return
            if mode in ("slow-stream", "stream-error") and i == 1:
                if mode == "slow-stream":
                    time.sleep(3)
                    self.drop()
                else:
                    event({"error": {"message": "The model is overloaded", "type": "server_error"}})
                    self.chunk(b"")
                return
            event(delta({"content": p}))
        event(delta({}, finish))
        if (req.get("stream_options") or {}).get("include_usage"):
            event({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
                   "model": model, "choices": [], "usage": usage})
        if mode != "no-done":
            event("[DONE]")
        if mode == "hang-after-done":
            time.sleep(3)
        self.chunk(b"")

    # -- rerank ------------------------------------------------------
    def rerank(self, req, model, mode):
        query, docs = req.get("query"), req.get("documents")
        if (not isinstance(query, str) or not isinstance(docs, list) or
                not all(isinstance(d, str) for d in docs)):
            self.send_json(400, oai_error("'query' must be a string and 'documents' a list of "
                                          "strings"))
            return
        q = embedding(query, ARGS.dim)
        res = []
        for i, d in enumerate(docs):
            s = 0.0
            for a, b in zip(q, embedding(d, ARGS.dim)):
                s += a * b
            res.append({"index": i, "relevance_score": s})
        res.sort(key=lambda r: -r["relevance_score"])
        top = req.get("top_n")
        if isinstance(top, int) and top > 0:
            res = res[:top]
        if mode == "missing-score":
            res = [r for r in res if r["index"] != len(docs) - 1]
        if mode == "tei-shape":
            self.send_json(200, [{"index": r["index"], "score": r["relevance_score"]} for r in res])
        else:
            self.send_json(200, {"id": "rerank-test", "model": model, "results": res,
                                 "usage": {"total_tokens": 0}})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # a test opens many connections at once

    def handle_error(self, request, client_address):
        # clients that hang up early (timeouts, cancels) are part of the tests
        if not isinstance(sys.exc_info()[1], ConnectionError) or ARGS.verbose:
            super().handle_error(request, client_address)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--key", default="")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--verbose", action="store_true")
    ARGS = ap.parse_args()

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    timer = threading.Timer(ARGS.timeout, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
