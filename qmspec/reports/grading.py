"""Relevance judgments without a person: an LLM grades each (query, passage) candidate 0-3 with UMBRELA's prompt, and,
for collections with no query log, writes one query per sampled passage (InPars style: that passage is then a known
relevant item).

UMBRELA (Upadhyay, Pradeep, Thakur, Craswell and Lin, "UMBRELA: UMbrela is the (Open-Source Reproduction of the) Bing
RELevance Assessor", arXiv:2406.06519, 2024) reproduces the prompt Bing's assessors' LLM used (Thomas et al., SIGIR
2024); its zero-shot prompt is quoted below as published (castorini/umbrela, prompts/qrel_zeroshot_bing.txt). What such
judgments are worth: at TREC 2024 RAG, UMBRELA's automatic judgments ordered the 77 submitted runs nearly as NIST's
assessors did (Upadhyay et al., "A Large-Scale Study of Relevance Assessments with Large Language Models", 2024), while
on TREC Deep Learning 2019-2023 their agreement with people pair by pair is far weaker than their agreement on the
order of systems: good for telling a better retriever from a worse one, not for any single grade. Known biases: LLMs grade passages an LLM wrote, and passages that repeat the
query's words, higher than people do, and they favour longer passages; generated queries (InPars, Bonifacio et al.,
2022) lean to the lexical overlap with their own passage. Judge a sample by hand and compare before trusting them alone.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from ..errors import QmspecError

UMBRELA_PROMPT = """Given a query and a passage, you must provide a score on an integer scale of 0 to 3 with the following meanings:
0 = represent that the passage has nothing to do with the query, 
1 = represents that the passage seems related to the query but does not answer it, 
2 = represents that the passage has some answer for the query, but the answer may be a bit unclear, or hidden amongst extraneous information and 
3 = represents that the passage is dedicated to the query and contains the exact answer.

Important Instruction: Assign category 1 if the passage is somewhat related to the topic but not completely, category 2 if passage presents something very important related to the entire topic but also has some extra information and category 3 if the passage only and entirely refers to the topic. If none of the above satisfies give it category 0.

Query: {query}
Passage: {passage}

Split this problem into steps:
Consider the underlying intent of the search.
Measure how well the content matches a likely intent of the query (M).
Measure how trustworthy the passage is (T).
Consider the aspects above and the relative importance of each, and decide on a final score (O). Final score must be an integer value only.
Do not provide any code in result. Provide each score in the format of: ##final score: score without providing any reasoning."""

# InPars-style few-shot query generation (Bonifacio et al., "InPars: Data Augmentation for Information Retrieval using
# Large Language Models", 2022): examples of a passage and a question it answers, then the passage to write one for.
GENERATION_PROMPT = """Write the question a user would type into a search box that the document answers. Answer with the question only.

Document: Open the sign-in page, choose 'Forgot password' and follow the link we email you. The link expires after one hour.
Question: how do I reset my password

Document: Invoices can be downloaded from Billing as PDF or CSV; each lists the tax charged per line.
Question: where can I download an invoice with tax

Document: {passage}
Question:"""

GRADE = re.compile(r"##\s*final score\s*\(?o?\)?\s*:\s*([0-3])\b", re.IGNORECASE)
MAX_PASSAGE_CHARS = 4000  # about 1,000 tokens: the long tail of passages costs no more than that
BATCH = 64  # pairs graded between two writes of the cache


class GradingError(QmspecError):
    pass


@dataclass(frozen=True)
class Pair:
    query_id: str
    query: str
    point_id: object
    passage: str

    @property
    def prompt(self) -> str:
        return UMBRELA_PROMPT.format(query=self.query, passage=self.passage[:MAX_PASSAGE_CHARS])


def parse_grade(answer: str) -> int | None:
    """UMBRELA's `##final score: N`, or an answer that is the bare grade; None for anything else."""
    found = GRADE.search(answer or "")
    if found:
        return int(found.group(1))
    bare = (answer or "").strip().strip(".")
    return int(bare) if bare in ("0", "1", "2", "3") else None


@dataclass(frozen=True)
class Estimate:
    pairs: int
    cached: int
    tokens: int
    cost: float | None

    def describe(self, model: str) -> str:
        cost = f", about ${self.cost:,.2f}" if self.cost is not None else ""
        return (f"{self.pairs:,} (query, passage) pairs to grade with {model}: {self.cached:,} cached, {self.pairs - self.cached:,} to ask, "
                f"about {self.tokens:,} tokens{cost}")


def estimate(prompts: list[str], cached: int, price_per_million: float | None, answer_tokens: int = 16) -> Estimate:
    """Tokens of the prompts still to ask (four characters a token) and of their answers, and their cost at the price given."""
    from ..embed.api import estimate_tokens

    tokens = sum(estimate_tokens(prompt) + answer_tokens for prompt in prompts)
    return Estimate(len(prompts) + cached, cached, tokens, tokens / 1e6 * price_per_million if price_per_million is not None else None)


def ask_all(chat, cache, prompts: list[str], concurrency: int, usable=lambda answer: True) -> dict[str, str]:
    """prompt -> answer for every prompt, from the cache where it was asked before, else from the model `concurrency` at a
    time, in batches whose `usable` answers are cached as they arrive (one that is not is asked again next time)."""
    answers = {prompt: cache.get(chat.model, prompt) for prompt in prompts}
    missing = [prompt for prompt, answer in answers.items() if answer is None]
    for start in range(0, len(missing), BATCH):
        batch = missing[start:start + BATCH]
        pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(batch))))
        asked = {pool.submit(chat.complete, prompt): prompt for prompt in batch}

        def keep(done) -> None:
            if answers[asked[done]] is None:
                answers[asked[done]] = answer = done.result()
                if usable(answer):
                    cache.put(chat.model, asked[done], answer)

        try:
            for done in as_completed(asked):
                keep(done)
        finally:  # a refusal stops what is not sent yet; what was already in flight is paid for, so it is kept
            pool.shutdown(wait=True, cancel_futures=True)
            for done in asked:
                if done.done() and not done.cancelled() and done.exception() is None:
                    keep(done)
    return answers


def grade(chat, cache, pairs: list[Pair], concurrency: int) -> dict[tuple, int]:
    """(query id, point id) -> UMBRELA grade 0-3. An answer that is not a grade stops everything, naming its pair: a
    judgments file with a guessed grade would decide a swap on it."""
    answers = ask_all(chat, cache, [pair.prompt for pair in pairs], concurrency, usable=lambda answer: parse_grade(answer) is not None)
    grades = {}
    for pair in pairs:
        found = parse_grade(answers[pair.prompt])
        if found is None:
            raise GradingError(f"{chat.model} answered {answers[pair.prompt][:120]!r} for query {pair.query!r} and point {pair.point_id}, "
                               "which is no grade 0-3 (UMBRELA asks for `##final score: N`); nothing was written; the answers so far "
                               "are cached. Try another --llm-model, or judge that pair by hand")
        grades[(pair.query_id, pair.point_id)] = found
    return grades


def generate(chat, cache, passages: dict, concurrency: int) -> dict:
    """point id -> a query the model wrote for that passage (InPars style), for the ids whose answer is a question."""
    prompts = {point_id: GENERATION_PROMPT.format(passage=text[:MAX_PASSAGE_CHARS]) for point_id, text in passages.items()}
    answers = ask_all(chat, cache, list(prompts.values()), concurrency)
    queries = {}
    for point_id, prompt in prompts.items():
        line = next((line.strip() for line in answers[prompt].splitlines() if line.strip()), "")
        line = re.sub(r"^(question|query)\s*:\s*", "", line, flags=re.IGNORECASE).strip().strip('"')
        if line:
            queries[point_id] = line
    return queries


def judged_records(candidates: list[dict], query_ids: list[str], grades: dict, known: dict, judged_by: str) -> list[dict]:
    """Graded judgments as `verify.quality.judgments` reads them: {"query", "relevant": {"<id>": grade}}. `known`: query id
    -> the point a generated query was written for (graded 3)."""
    records = []
    for query_id, record in zip(query_ids, candidates):
        relevant = {str(item["id"]): grades[(query_id, item["id"])] for item in record["candidates"] if (query_id, item["id"]) in grades}
        if query_id in known:
            relevant[str(known[query_id])] = 3
        records.append({"query": record["query"], "relevant": relevant, "judged_by": judged_by})
    return records
