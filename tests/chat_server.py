"""An OpenAI-compatible `/v1/chat/completions` server on loopback, for the LLM judge's tests: the embedding server's
transport (bearer key, fault script, latency, requests in flight; tests/embedding_server.py) answering chats instead.

`reply` turns the request's user message into the assistant's answer; `prompts` keeps every message asked.
"""
from __future__ import annotations

import re
from typing import Callable

from .embedding_server import EmbeddingServer

UMBRELA_PAIR = re.compile(r"Query: (?P<query>.*)\nPassage: (?P<passage>.*?)\n\nSplit this problem", re.DOTALL)
GENERATION = re.compile(r".*Document: (?P<passage>.*?)\nQuestion:$", re.DOTALL)  # the last document: the one to write for


class ChatServer(EmbeddingServer):
    def __init__(self, reply: Callable[[str], str], **transport):
        super().__init__(None, **transport)
        self.reply = reply
        self.prompts: list[str] = []

    def answer(self, body: dict, fault) -> tuple[int, dict]:
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.prompts.append(prompt)
        return 200, {"object": "chat.completion", "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply(prompt)}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 8}}


def assessor(grade: Callable[[str, str], int | str]) -> Callable[[str], str]:
    """A reply function that grades UMBRELA's (query, passage) with `grade` (an int, or any text to answer instead)
    and writes a generation prompt's question as the passage's own words."""
    def reply(prompt: str) -> str:
        pair = UMBRELA_PAIR.search(prompt)
        if pair:
            graded = grade(pair["query"], pair["passage"])
            return f"##final score: {graded}" if isinstance(graded, int) else graded
        written = GENERATION.search(prompt)
        if written:
            return f"Question: {written['passage']}"
        return "I cannot help with that."
    return reply
