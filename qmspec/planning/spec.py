"""Load a spec file: YAML -> JSON Schema -> environment variables -> semantic checks -> typed Spec.

Every problem is collected with its file, line, key path and a fix, and raised together as one SpecError,
so a user fixes a spec in one round instead of one error per run.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema

from ..errors import Problem, QmspecError, SpecError, has_credentials
from . import envvars
from .judgments import load_judgments
from .plan import Hook
from .settings import CollectionSettings, index_schema
from .yamlpos import YamlDocument, YamlSyntaxError, line_of, load_yaml

SCHEMA_PATH = Path(__file__).parent.parent / "qmspec.schema.json"
DEFAULT_TEXT_FIELD = "text"


# ---------------------------------------------------------------- typed spec


IDENTITY_KEYS = ("model", "revision", "prompts", "truncate_dim", "dimensions", "tokenizer")  # any difference: re-embed
# backend options that change the vectors a model makes (BM25's tokenization), where they differ from the defaults
TOKENIZER_DEFAULTS = {"language": "english", "stopwords": True, "stemming": True}
TOKENIZER_OPTIONS = (*TOKENIZER_DEFAULTS, "k", "b", "avg_len")
LOCAL_SETTINGS = ("path", "device", "batch_size")  # how this machine runs a model: never recorded in Qdrant
DEFAULT_OBSERVE_FOR_S = 86400.0  # a day of the application's traffic without the old vector before it can be dropped
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> float:
    """"24h" -> 86400.0 (the schema admits <digits><s|m|h|d|w> only)."""
    return float(int(duration[:-1]) * DURATION_UNITS[duration[-1]])


@dataclass(frozen=True)
class ModelSpec:
    name: str
    backend: str
    path: str | None = None  # local weights instead of resolving the name
    revision: str | None = None
    trust_remote_code: bool = False
    device: str = "auto"
    max_seq_length: int | None = None
    batch_size: int | None = None
    prompts: dict = field(default_factory=dict)  # {"query": text | {"name": ...}, "document": ...}
    normalize: bool = True
    truncate_dim: int | None = None
    matryoshka: bool = False
    options: dict = field(default_factory=dict)  # backend settings (BM25 language, an API's base_url, dimensions, ...)

    @property
    def identity(self) -> dict:
        """What tells whether stored vectors came from this model, as stamped into collection metadata: the name,
        and the revision, prompts, truncation and API dimensions where the spec states them."""
        tokenizer = {key: self.options[key] for key in TOKENIZER_OPTIONS
                     if key in self.options and self.options[key] != TOKENIZER_DEFAULTS.get(key)} if self.backend == "bm25" else {}
        identity = {"model": self.name, "revision": self.revision, "prompts": self.prompts or None,
                    "truncate_dim": self.truncate_dim, "dimensions": self.options.get("dimensions"), "tokenizer": tokenizer or None}
        return {key: value for key, value in identity.items() if value is not None}

    @property
    def settings(self) -> dict:
        """Everything an embedder needs to run this model here, as plan steps carry it."""
        settings = {"name": self.name, "backend": self.backend, "path": self.path, "normalize": self.normalize,
                    "truncate_dim": self.truncate_dim, "options": self.options}
        extra = {"revision": self.revision, "trust_remote_code": self.trust_remote_code or None,
                 "device": None if self.device == "auto" else self.device, "max_seq_length": self.max_seq_length,
                 "batch_size": self.batch_size, "prompts": self.prompts or None}
        return settings | {key: value for key, value in extra.items() if value is not None}

    @property
    def portable_settings(self) -> dict:
        """The settings recorded in collection metadata, so verification and other machines embed queries alike:
        no local path, device or batch size."""
        return {key: value for key, value in self.settings.items() if key not in LOCAL_SETTINGS}


@dataclass(frozen=True)
class DenseVectorSpec:
    name: str
    size: int
    distance: str
    on_disk: bool = False
    datatype: str = "float32"
    multivector: str | None = None  # comparator, e.g. "max_sim"
    model: ModelSpec | None = None
    text_field: str = DEFAULT_TEXT_FIELD
    carry_from: str | None = None
    hnsw: dict = field(default_factory=dict)
    quantization: dict | None = None
    adapter: dict | None = None  # {"from", "sample", "min_recall"}: map stored vectors instead of re-embedding


@dataclass(frozen=True)
class SparseVectorSpec:
    name: str
    modifier: str = "idf"
    on_disk: bool = False
    model: ModelSpec | None = None
    text_field: str = DEFAULT_TEXT_FIELD
    carry_from: str | None = None
    index: dict = field(default_factory=dict)  # full_scan_threshold, datatype


@dataclass(frozen=True)
class SourceSpec:
    collection: str | None = None  # None and no files: the alias's current collection
    files: tuple[str, ...] = ()  # relative to the working directory where possible
    id_field: str = "id"

    @property
    def kind(self) -> str:
        return "files" if self.files else "collection" if self.collection else "alias"


@dataclass(frozen=True)
class MigrationSpec:
    batch_size: int = 128
    parallel: int = 2
    scroll_page: int = 1000
    update_mode: str = "insert_only"
    defer_indexing: str = "hnsw_m0"
    embed: str = "on_copy"  # or "backfill": separate update_vectors steps after the copy
    partitions: int | str = "auto"  # id ranges of a copy: a number, or auto (one per 250k points)


@dataclass(frozen=True)
class SearchCheck:
    queries: tuple[str, ...]
    using: str | None
    k: int = 10
    min_overlap: float = 0.6
    queries_file: str | None = None


METRIC = re.compile(r"^(ndcg|recall|mrr|precision|map)@([1-9][0-9]*)$")


@dataclass(frozen=True)
class QualityCheck:
    """Relevance judgments and the metrics gated on them: `minimum` floors, and the largest drop allowed against
    what the alias serves now."""

    judgments: tuple[str, ...]  # one JSON Lines file, or BEIR queries.jsonl + qrels .tsv
    fingerprint: str  # of their content: a saved plan gated on other judgments is another plan
    metrics: tuple[str, ...] = ("ndcg@10",)
    minimum: dict = field(default_factory=dict)
    max_drop: dict = field(default_factory=dict)
    confidence: float = 0.95  # of the intervals the gates decide on

    @property
    def depth(self) -> int:
        """How many results each query fetches: the largest cut-off of any metric."""
        return max(int(METRIC.match(metric).group(2)) for metric in self.metrics)


@dataclass(frozen=True)
class VerifySpec:
    count: bool = True
    vectors: bool = True
    payload_mode: str = "all"
    payload_sample: int = 1000
    search: SearchCheck | None = None
    sparse: SearchCheck | None = None
    quality: QualityCheck | None = None

    @property
    def has_gates(self) -> bool:
        return self.count or self.vectors or self.payload_mode != "off" or bool(self.search or self.sparse or self.quality)


@dataclass(frozen=True)
class ConnectionSpec:
    path: str | None = None
    url: str | None = None
    url_as_written: str | None = None  # before ${VAR} expansion: where its host came from (trust.py)
    api_key_env: str | None = None
    cloud_inference: bool = False
    prefer_grpc: bool = False
    grpc_port: int = 6334


def _hook(point: str, entry) -> Hook:
    """`pre_swap: ./deploy-query.sh`, or `pre_swap: {run: ..., timeout: 5m, env: [DEPLOY_TOKEN]}`."""
    if isinstance(entry, str):
        return Hook(point, entry)
    return Hook(point, entry["run"], seconds(entry.get("timeout", "5m")), tuple(entry.get("env", ())))


@dataclass(frozen=True)
class Override:
    """One policy.allow entry: a rule code accepted for this spec, why, and until when (a date, inclusive; Vespa's
    validation overrides end too: an acceptance nobody renews stops accepting). A bare code has neither."""

    code: str
    reason: str = ""
    until: str = ""  # YYYY-MM-DD

    @classmethod
    def of(cls, entry) -> Override:
        return cls(entry) if isinstance(entry, str) else cls(entry["code"], entry.get("reason", ""), str(entry.get("until", "")))

    def expired(self, at: float | None) -> bool:
        """Past its end at epoch seconds `at` (when the live state was read; None: unknown, so not expired)."""
        if not self.until or at is None:
            return False
        return time.strftime("%Y-%m-%d", time.gmtime(at)) > self.until

    def as_dict(self) -> dict:
        return {key: value for key, value in (("reason", self.reason), ("until", self.until)) if value}


@dataclass(frozen=True)
class Spec:
    file: str
    alias: str
    collection: str
    vectors: tuple[DenseVectorSpec, ...]
    sparse_vectors: tuple[SparseVectorSpec, ...] = ()
    source: SourceSpec = SourceSpec()
    connection: ConnectionSpec = ConnectionSpec()
    query_using: str | None = None  # the vector of a single-vector query; None for a fused one
    query_model: str | None = None
    query_shape: dict = field(default_factory=dict)  # {"using"} or {"prefetch": [{"using", "limit"}], "fusion", "limit"}
    settings: CollectionSettings = CollectionSettings()
    migration: MigrationSpec = MigrationSpec()
    verify: VerifySpec = VerifySpec()
    cleanup_old: str = "keep"
    cleanup_when: str = "after_verify"
    observe_for_s: float = DEFAULT_OBSERVE_FOR_S  # cleanup.observe_for: how long a vector goes unqueried before its in-place drop
    allow: tuple[Override, ...] = ()  # policy.allow: rules accepted on purpose, each with its reason and end
    hooks: tuple[Hook, ...] = ()
    spec_hash: str = ""
    lines: dict = field(default_factory=dict, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)  # the file as read: plans carry it
    env: str | None = None
    warnings: tuple[Problem, ...] = field(default=(), compare=False, repr=False)  # reported by validate, refuse nothing

    def vector(self, name: str) -> DenseVectorSpec | SparseVectorSpec | None:
        for vector in (*self.vectors, *self.sparse_vectors):
            if vector.name == name:
                return vector
        return None

    def line_of(self, *path) -> int | None:
        return line_of(self.lines, path)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The files this spec reads besides itself: a change to any of them changes what it plans."""
        queries = [check.queries_file for check in (self.verify.search, self.verify.sparse) if check and check.queries_file]
        return tuple(dict.fromkeys((*self.source.files, *(self.verify.quality.judgments if self.verify.quality else ()), *queries)))


# ---------------------------------------------------------------- loading


def load_spec(path: str | os.PathLike, environ: dict | None = None, env: str | None = None, deploying: bool = True) -> Spec:
    """Read and validate a spec file, with the values of environment `env` merged in. Raises SpecError listing
    every problem found. `deploying=False` (validate, the pre-commit hook): a connection setting's variable that is
    unset where the spec is checked (a laptop) is a warning, not a problem: it is set where the spec deploys."""
    environ = os.environ if environ is None else environ
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(file, None, "", "spec file not found", "check the path, relative to the current directory")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(file, None, "", f"cannot read the spec: {exc}", "save it as a UTF-8 text file")]) from None
    return parse_spec(text, file, environ, env, deploying)


def parse_spec(text: str, file: str, environ: dict, env: str | None = None, deploying: bool = True) -> Spec:
    try:
        document = load_yaml(text)
    except YamlSyntaxError as exc:
        raise SpecError([Problem(file, exc.line, _dotted(exc.key), exc.message, "fix the YAML at that line")]) from None
    if not isinstance(document.data, dict):
        raise SpecError([Problem(file, document.line_of(()), "", "the spec must be a YAML mapping (key: value lines)",
                                 "start from specs/quickstart.yaml")])
    problems = schema_problems(document, file)
    if problems:
        raise SpecError(problems)
    merged = for_environment(document, env)
    if merged.data != {k: v for k, v in document.data.items() if k != "environments"}:
        problems = schema_problems(merged, file)  # the overlay may break what the base got right
        if problems:
            raise SpecError(problems)
    document = merged
    data = document.data
    context = _Context(file, document, environ, Path(file).resolve().parent, deploying)
    spec = dataclasses.replace(_build_spec(data, context), text=text, env=env)
    context.problems.extend(semantic_problems(spec, context))
    if context.problems:
        raise SpecError(context.problems)
    return dataclasses.replace(spec, warnings=tuple(context.notes + semantic_warnings(spec)))


def spec_environments(path: str | os.PathLike) -> list[str]:
    """The environments a spec file gives values for (`environments:`), to validate each overlay; [] where the file
    cannot be read (loading it reports why)."""
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8")).data
    except (OSError, UnicodeDecodeError, YamlSyntaxError):
        return []
    overlays = data.get("environments") if isinstance(data, dict) else None
    return sorted(map(str, overlays)) if isinstance(overlays, dict) else []


def for_environment(document: YamlDocument, env: str | None) -> YamlDocument:
    """The spec as environment `env` sees it: its `environments.<env>` values merged over the rest, each merged
    key keeping the line it was written on, so errors point at the overlay."""
    data = dict(document.data)
    overlays = data.pop("environments", None) or {}
    lines = dict(document.lines)
    if env and env in overlays:
        _merge(data, overlays[env], (), ("environments", env), lines)
    return YamlDocument(data, lines)


def _merge(base: dict, overlay: dict, path: tuple, origin: tuple, lines: dict) -> None:
    for key, value in overlay.items():
        if origin + (key,) in lines:
            lines[path + (key,)] = lines[origin + (key,)]
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = dict(base[key])
            _merge(base[key], value, path + (key,), origin + (key,), lines)
        else:
            base[key] = value


@lru_cache(maxsize=1)
def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema())


def schema_problems(document: YamlDocument, file: str) -> list[Problem]:
    problems = []
    errors = sorted(_validator().iter_errors(document.data), key=lambda e: (document.line_of(e.absolute_path) or 0, list(map(str, e.absolute_path))))
    for error in errors:
        path = tuple(error.absolute_path)
        message, fix, path = _explain(error, path)
        problems.append(Problem(file, document.line_of(path), _dotted(path), message, fix))
    return problems


def _explain(error: jsonschema.ValidationError, path: tuple) -> tuple[str, str, tuple]:
    """Turn a schema error into a sentence and a fix a person can act on."""
    if error.validator == "oneOf" and error.context:  # the alternative of the value's own type says what is wrong
        typed = [sub for sub in error.context if sub.validator != "type"]
        return _explain(jsonschema.exceptions.best_match(typed or error.context), path)
    kind, value, schema = error.validator, error.instance, error.schema
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        if extra and allowed:
            key = extra[0]
            guess = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {guess[0]!r}?" if guess else f"allowed keys here: {', '.join(allowed)}"
            return f"unknown key {key!r}", f"remove it or correct its spelling; {hint}", path + (key,)
    if kind == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        key = missing[0] if missing else "?"
        if key == "name" and path and path[-1] == "model":  # what `qmspec inspect` writes for a model it cannot know
            return ("no model named: nothing recorded says which model produced the stored vectors",
                    "name it (a Hugging Face id, a fastembed or API model), then run `qmspec import SPEC`: it embeds a sample of "
                    "the stored texts and checks them against the stored vectors before recording the model", path)
        return f"missing required key {key!r}", f"add `{key}:` here ({_describe(error, key)})", path
    if kind == "enum":
        return f"{value!r} is not allowed", f"use one of: {', '.join(map(str, error.validator_value))}", path
    if kind == "const":
        return f"{value!r} is not allowed", f"use {error.validator_value!r}", path
    if kind == "type":
        article = "an" if str(error.validator_value)[:1] in "aeiou" else "a"
        return f"{value!r} is not {article} {error.validator_value}", f"give {article} {error.validator_value} value", path
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return f"{value!r} is out of range ({kind} {error.validator_value})", "use a value within the range", path
    if kind == "pattern" and path and path[-1] == "payload_indexes":
        return (f"{value!r} is not a payload field path", "join keys with single dots, e.g. `meta.n`; `[]` after a key for "
                "an array, e.g. `tags[]`", path + (value,))
    if kind == "pattern" and path and path[-1] == "api_key_env":  # never echo it: it may be a pasted key
        return ("is not the name of an environment variable", "name the variable that holds the key (e.g. QDRANT_API_KEY) "
                "and keep the key itself in the environment", path)
    if kind == "pattern":
        return f"{value!r} has characters that are not allowed", "use letters, digits, _ . - only (codes look like DS101)", path
    if kind in ("minItems", "minLength", "minProperties"):
        return "is empty", "give at least one value or remove the key", path
    if kind == "anyOf" and path and path[-1] == "backend":
        built_in = error.schema["anyOf"][0]["enum"]
        guess = difflib.get_close_matches(str(value), built_in, n=1)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        return (f"unknown backend {value!r}", f"{hint}use one of {', '.join(built_in)}, or a plug-in written "
                "package.module:ClassName", path)
    if kind == "anyOf" and path and path[-1] == "quantization":
        return f"{value!r} is not a quantization setting", "use `none`, or one of scalar / binary / product with its options", path
    if kind == "maxProperties":
        return "has more than one entry", "choose exactly one of them", path
    if kind == "uniqueItems":
        return "lists a value twice", "remove the repeated value", path
    return error.message, "see `qmspec schema` for what this key takes", path


def _describe(error: jsonschema.ValidationError, key: str) -> str:
    subschema = error.schema.get("properties", {}).get(key, {})
    return subschema.get("description") or subschema.get("title") or "see `qmspec schema`"


def _dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---------------------------------------------------------------- building


@dataclass
class _Context:
    file: str
    document: YamlDocument
    environ: dict
    base_dir: Path
    deploying: bool = True
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # warnings: what only the place the spec deploys to must have

    def problem(self, path: tuple, message: str, fix: str) -> None:
        self.problems.append(Problem(self.file, self.document.line_of(path), _dotted(path), message, fix))

    def expand(self, value: str, path: tuple) -> str:
        return envvars.expand(value, self.environ, lambda name: self.problem(
            path, f"environment variable {name} is not set", f"export {name}=... or write ${{{name}:-default}}"))

    def expand_connection(self, value: str, path: tuple) -> str:
        """Connection settings name where the spec deploys: a variable unset here is a note while validating."""
        if self.deploying:
            return self.expand(value, path)

        def note(name: str) -> None:
            self.notes.append(Problem(self.file, self.document.line_of(path), _dotted(path), f"environment variable {name} is "
                                      "not set here; plan and apply need it where the spec deploys", f"export {name}=... there"))

        return envvars.expand(value, self.environ, note)

    def resolve_folder(self, value: str, path: tuple) -> str:
        """A folder named in the spec (the embedded store), relative to the spec's folder like every path in a spec."""
        resolved = (self.base_dir / self.expand_connection(value, path)).resolve()
        return os.path.relpath(resolved) if resolved.is_relative_to(Path.cwd()) else str(resolved)

    def resolve_file(self, value: str, path: tuple) -> str:
        resolved = (self.base_dir / self.expand(value, path)).resolve()
        if not resolved.is_file():
            self.problem(path, f"file not found: {resolved}", "give a path relative to the spec file's folder")
        # Relative to the working directory, so plans made in CI and applied on another runner name the same file.
        return os.path.relpath(resolved) if resolved.is_relative_to(Path.cwd()) else str(resolved)


MODEL_KEYS = {"name", "backend", "options", "path", "revision", "trust_remote_code", "device", "max_seq_length", "batch_size",
              "prompts", "normalize", "truncate_dim", "matryoshka"}  # the rest are the backend's options


def _model(data: dict | None, default_backend: str, path: tuple, context: _Context) -> ModelSpec | None:
    if not data:
        return None
    options = {key: value for key, value in sorted(data.items()) if key not in MODEL_KEYS} | data.get("options", {})
    if "base_url" in options:  # checked here, expanded by the embedder: a key in it must never reach a plan or metadata
        context.expand(options["base_url"], path + ("base_url",))
    return ModelSpec(
        name=data["name"],
        backend=data.get("backend", default_backend),
        path=data.get("path"),
        revision=data.get("revision"),
        trust_remote_code=data.get("trust_remote_code", False),
        device=data.get("device", "auto"),
        max_seq_length=data.get("max_seq_length"),
        batch_size=data.get("batch_size"),
        prompts=data.get("prompts", {}),
        normalize=data.get("normalize", True),
        truncate_dim=data.get("truncate_dim"),
        matryoshka=data.get("matryoshka", False),
        options=options,
    )


def _dense(name: str, data: dict, context: _Context) -> DenseVectorSpec:
    return DenseVectorSpec(
        name=name,
        size=data["size"],
        distance=data["distance"],
        on_disk=data.get("on_disk", False),
        datatype=data.get("datatype", "float32"),
        multivector=(data.get("multivector") or {}).get("comparator"),
        model=_model(data.get("model"), "sentence-transformers", ("vectors", name, "model"), context),
        text_field=data.get("text_field", DEFAULT_TEXT_FIELD),
        carry_from=(data.get("carry") or {}).get("from"),
        hnsw=data.get("hnsw", {}),
        quantization=_quantization(data.get("quantization")),
        adapter={"sample": 500, "min_recall": 0.8} | data["adapter"] if "adapter" in data else None,
    )


def _sparse(name: str, data: dict, context: _Context) -> SparseVectorSpec:
    return SparseVectorSpec(
        name=name,
        modifier=data.get("modifier", "idf"),
        on_disk=data.get("on_disk", False),
        model=_model(data.get("model"), "bm25", ("sparse_vectors", name, "model"), context),
        text_field=data.get("text_field", DEFAULT_TEXT_FIELD),
        carry_from=(data.get("carry") or {}).get("from"),
        index=data.get("index", {}),
    )


def _quantization(value) -> dict | None:
    """`none` and absent differ: `none` asks to remove quantization, absent leaves it as it is."""
    if value is None:
        return None
    return {} if value == "none" else value


def _search_check(data: dict | None, path: tuple, context: _Context, default_using: str | None) -> SearchCheck | None:
    if not data:
        return None
    queries, file = list(data.get("queries", [])), None
    if "queries_file" in data:
        file = context.resolve_file(data["queries_file"], path + ("queries_file",))
        if Path(file).is_file():
            queries += [line.strip() for line in Path(file).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not queries:
        context.problem(path, "no sample queries", "add `queries:` (a list) or `queries_file:`")
    return SearchCheck(tuple(queries), data.get("using", default_using), data.get("k", 10), data.get("min_overlap", 0.6), file)


def _quality(data: dict | None, context: _Context) -> QualityCheck | None:
    if not data:
        return None
    path = ("verify", "quality", "judgments")
    judgments = data["judgments"]
    files = [judgments] if isinstance(judgments, str) else [judgments["queries"], judgments["qrels"]]
    resolved = tuple(context.resolve_file(file, path) for file in files)
    if all(Path(file).is_file() for file in resolved):
        try:  # read and checked now, not after a copy of millions of points
            load_judgments(resolved)
        except QmspecError as error:
            context.problem(path, str(error), "fix the judgments file at that line (`qmspec judge` writes a template)")
    digest = hashlib.sha256(b"".join(Path(file).read_bytes() for file in resolved if Path(file).is_file())).hexdigest()[:16]
    return QualityCheck(resolved, digest, tuple(data.get("metrics", ("ndcg@10",))), data.get("min", {}), data.get("max_drop", {}),
                        float(data.get("confidence", 0.95)))


def query_shape(query: dict) -> dict:
    """The query the application runs, as verify and compare run it: one named vector, or Qdrant Query API prefetches
    fused with rrf/dbsf."""
    if "prefetch" in query:
        return {"prefetch": [{"using": entry["using"], "limit": entry.get("limit", 100)} for entry in query["prefetch"]],
                "fusion": query.get("fusion", "rrf"), "limit": query.get("limit", 10)}
    return {"using": query["using"]} if query.get("using") else {}


def _build_spec(data: dict, context: _Context) -> Spec:
    connection = data.get("connection", {})
    source = data.get("source", {})
    query = data.get("query", {})
    migration = data.get("migration", {})
    verify = data.get("verify", {})
    cleanup = data.get("cleanup", {})
    payloads = verify.get("payloads", {})
    return Spec(
        file=context.file,
        alias=data["alias"],
        collection=data["collection"],
        vectors=tuple(_dense(name, value, context) for name, value in data.get("vectors", {}).items()),
        sparse_vectors=tuple(_sparse(name, value, context) for name, value in data.get("sparse_vectors", {}).items()),
        source=SourceSpec(
            collection=source.get("collection"),
            files=tuple(context.resolve_file(f, ("source", "files", i)) for i, f in enumerate(source.get("files", []))),
            id_field=source.get("id_field", "id"),
        ),
        connection=ConnectionSpec(
            path=context.resolve_folder(connection["path"], ("connection", "path")) if "path" in connection else None,
            url=context.expand_connection(connection["url"], ("connection", "url")) if "url" in connection else None,
            url_as_written=connection.get("url"),
            api_key_env=connection.get("api_key_env"),
            cloud_inference=connection.get("cloud_inference", False),
            prefer_grpc=connection.get("prefer_grpc", False),
            grpc_port=connection.get("grpc_port", 6334),
        ),
        query_using=query.get("using") if "prefetch" not in query else None,
        query_model=query.get("model"),
        query_shape=query_shape(query),
        settings=CollectionSettings(
            hnsw=data.get("hnsw", {}),
            optimizers=data.get("optimizers", {}),
            quantization=_quantization(data.get("quantization")),
            on_disk_payload=data.get("on_disk_payload"),
            replication_factor=data.get("replication_factor"),
            write_consistency_factor=data.get("write_consistency_factor"),
            strict_mode=data.get("strict_mode", {}),
            wal=data.get("wal", {}),
            shard_number=data.get("shard_number"),
            sharding_method=data.get("sharding_method"),
            shard_keys=tuple(data.get("shard_keys", ())),
            payload_indexes={name: index_schema(value) for name, value in data.get("payload_indexes", {}).items()},
        ),
        migration=MigrationSpec(**migration),
        verify=VerifySpec(
            count=verify.get("count", True),
            vectors=verify.get("vectors", True),
            payload_mode=payloads.get("mode", "all"),
            payload_sample=payloads.get("sample_size", 1000),
            search=_search_check(verify.get("search"), ("verify", "search"), context, query.get("using")),
            sparse=_search_check(verify.get("sparse"), ("verify", "sparse"), context, _first_sparse(data)),
            quality=_quality(verify.get("quality"), context),
        ),
        cleanup_old=cleanup.get("old_collection", "keep"),
        cleanup_when=cleanup.get("when", "after_verify"),
        observe_for_s=seconds(cleanup.get("observe_for", "24h")),
        allow=tuple(map(Override.of, data.get("policy", {}).get("allow", []))),
        hooks=tuple(_hook(point, entry) for point, entry in (data.get("hooks") or {}).items()),
        spec_hash=spec_hash(data),
        lines=dict(context.document.lines),
    )


def _first_sparse(data: dict) -> str | None:
    return next(iter(data.get("sparse_vectors", {})), None)


def spec_hash(data: dict) -> str:
    """Hash of the desired state. The connection is left out: the same spec aimed at staging and prod is one spec."""
    desired = {key: value for key, value in data.items() if key not in ("connection", "environments")}
    return hashlib.sha256(json.dumps(desired, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- semantic checks


def url_problem(url: str) -> str | None:
    """What is wrong with a Qdrant server URL, or None. The URL itself is not repeated: it may hold credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL with a host"
    return None


def semantic_problems(spec: Spec, context: _Context) -> list[Problem]:
    """Checks JSON Schema cannot express: cross-references between keys."""
    problems: list[Problem] = []

    def add(path: tuple, message: str, fix: str) -> None:
        problems.append(Problem(context.file, spec.line_of(*path), _dotted(path), message, fix))

    if spec.connection.url and url_problem(spec.connection.url) and not (context.notes and not context.deploying):
        add(("connection", "url"), url_problem(spec.connection.url), "write it as http(s)://host:port, e.g. http://localhost:6333")
    for vector in (*spec.vectors, *spec.sparse_vectors):
        written = (vector.model.options.get("base_url") if vector.model else None) or ""
        if has_credentials(envvars.REFERENCE.sub("", written).replace(":@", "@")):
            group = "vectors" if isinstance(vector, DenseVectorSpec) else "sparse_vectors"
            add((group, vector.name, "model", "base_url"), "holds credentials written out (user:password@ or a key parameter): "
                "plans, journals and collection metadata would record them",
                "write the secret as a reference to an environment variable, e.g. `?key=${EMBEDDING_KEY}`, or use api_key_env")

    if spec.alias == spec.collection:
        add(("alias",), "the alias and the collection have the same name; Qdrant keeps one namespace for both",
            "name the collection with a version suffix, e.g. `collection: " + spec.alias + "_v1`")
    if not spec.vectors and not spec.sparse_vectors:
        add(("vectors",), "no vectors declared", "declare at least one named vector under `vectors:` or `sparse_vectors:`")
    dense_names = {vector.name for vector in spec.vectors}
    for vector in spec.sparse_vectors:
        if vector.name in dense_names:
            add(("sparse_vectors", vector.name), f"{vector.name!r} is declared as both dense and sparse",
                "give the sparse vector another name, e.g. `bm25`")
    for vector in (*spec.vectors, *spec.sparse_vectors):
        group = "vectors" if isinstance(vector, DenseVectorSpec) else "sparse_vectors"
        _check_vector(vector, (group, vector.name), spec, add)
    if spec.settings.shard_keys and spec.settings.sharding_method == "auto":
        add(("shard_keys",), "shard keys need custom sharding; this spec sets `sharding_method: auto`",
            "set `sharding_method: custom`, or remove `shard_keys`")
    if spec.source.files and spec.source.collection:
        add(("source",), "both `files` and `collection` given", "keep one: points come from either files or a collection")
    if spec.source.collection == spec.collection:
        add(("source", "collection"), "the source is the target collection itself",
            "copy from the collection the alias serves now (omit `source`) or from another collection")
    if spec.source.files:
        for vector in (*spec.vectors, *spec.sparse_vectors):
            if vector.carry_from or getattr(vector, "adapter", None):
                group = "vectors" if isinstance(vector, DenseVectorSpec) else "sparse_vectors"
                add((group, vector.name, "carry"), "cannot carry vectors when points come from files",
                    "give the vector a `model:` instead, or copy from a collection")
    if spec.query_using and not spec.vector(spec.query_using):
        add(("query", "using"), f"{spec.query_using!r} is not a declared vector",
            f"use one of: {', '.join(v.name for v in (*spec.vectors, *spec.sparse_vectors))}")
    for check_name in ("search", "sparse"):
        check = getattr(spec.verify, check_name)
        if check and check.using and not spec.vector(check.using):
            add(("verify", check_name, "using"), f"{check.using!r} is not a declared vector", "name a vector declared in this spec")
        elif check and not check.using:
            add(("verify", check_name), "no vector to compare", "add `using:` here or `query.using:`")
    for index, entry in enumerate(spec.query_shape.get("prefetch", ())):
        if not spec.vector(entry["using"]):
            add(("query", "prefetch", index, "using"), f"{entry['using']!r} is not a declared vector",
                f"use one of: {', '.join(v.name for v in (*spec.vectors, *spec.sparse_vectors))}")
    quality = spec.verify.quality
    if quality:
        for metric in quality.metrics:
            if not METRIC.match(metric):
                add(("verify", "quality", "metrics"), f"{metric!r} is not a metric qmspec computes",
                    "use ndcg@K, recall@K, mrr@K, precision@K or map@K, e.g. ndcg@10")
        for gate in ("min", "max_drop"):
            for metric in getattr(quality, "minimum" if gate == "min" else gate):
                if metric not in quality.metrics:
                    add(("verify", "quality", gate, metric), f"{metric!r} is gated but not computed",
                        f"add it to verify.quality.metrics ({', '.join(quality.metrics)})")
        if not spec.query_shape:
            add(("verify", "quality"), "no query to evaluate", "describe the query the application runs under `query:`")
    return problems


def semantic_warnings(spec: Spec) -> list[Problem]:
    """Gates that cannot fail: they look like safety and check nothing."""
    found = []
    for name in ("search", "sparse"):
        check = getattr(spec.verify, name)
        if check and check.min_overlap <= 0:
            path = ("verify", name, "min_overlap")
            found.append(Problem(spec.file, spec.line_of(*path) or spec.line_of("verify", name), _dotted(path),
                                 "min_overlap 0 passes whatever the results: this gate cannot fail",
                                 "gate quality on judgments (verify.quality) or set a threshold that can fail"))
    quality = spec.verify.quality
    if quality:
        for metric, floor in quality.minimum.items():
            if floor <= 0:
                path = ("verify", "quality", "min", metric)
                found.append(Problem(spec.file, spec.line_of(*path), _dotted(path), f"min {metric} {floor} cannot fail",
                                     "set the lowest value you would accept, or remove the gate"))
        for metric, drop in quality.max_drop.items():
            if drop >= 1:
                path = ("verify", "quality", "max_drop", metric)
                found.append(Problem(spec.file, spec.line_of(*path), _dotted(path), f"max_drop {metric} {drop} cannot fail",
                                     "set the largest drop you would accept, e.g. 0.02"))
        judged = _judged_queries(quality)
        if judged is not None and judged < FEW_JUDGED_QUERIES:
            path = ("verify", "quality", "judgments")
            found.append(Problem(spec.file, spec.line_of(*path), _dotted(path),
                                 f"{judged} judged queries: decisions on fewer than {FEW_JUDGED_QUERIES} are unstable (Voorhees and "
                                 "Buckley), and the gates' confidence intervals will be wide enough to refuse for want of evidence",
                                 "judge more queries (`qmspec judge`, by hand or with an LLM), or widen the gates"))
    for number, override in enumerate(spec.allow):
        if not override.until:
            path = ("policy", "allow", number)
            found.append(Problem(spec.file, spec.line_of(*path) or spec.line_of("policy", "allow"), _dotted(path),
                                 f"{override.code} is accepted with no end" + ("" if override.reason else " and no reason"),
                                 f"write it {{code: {override.code}, reason: \"why\", until: YYYY-MM-DD}}: an acceptance that ends "
                                 "is reviewed again"))
    return found


FEW_JUDGED_QUERIES = 50


def _judged_queries(quality: QualityCheck) -> int | None:
    try:
        return len(load_judgments(quality.judgments))
    except QmspecError:  # unreadable: validation reported it already
        return None


def _check_vector(vector, path: tuple, spec: Spec, add) -> None:
    model = vector.model
    if model is None and vector.carry_from is None:
        add(path, "has neither `model` nor `carry`", "add `model: {name: ...}` to embed it, or `carry: {from: NAME}` to copy it")
    if model is not None and vector.carry_from is not None:
        add(path + ("carry",), "has both `model` and `carry`", "keep `carry` to copy stored vectors, or `model` to re-embed")
    if isinstance(vector, DenseVectorSpec) and vector.adapter and (model is None or vector.carry_from):
        add(path + ("adapter",), "an adapter maps stored vectors into a model's space: it needs `model` and no `carry`",
            "give the new model under `model:` and remove `carry:`")
    if isinstance(vector, DenseVectorSpec):
        if model and model.backend == "bm25":
            add(path + ("model", "backend"), "bm25 produces sparse vectors", "move this vector under `sparse_vectors:`")
        if model and model.truncate_dim and model.truncate_dim != vector.size:
            add(path + ("model", "truncate_dim"), f"truncate_dim {model.truncate_dim} differs from size {vector.size}",
                f"set truncate_dim to {vector.size}, the size the collection stores")
    elif model and model.backend in ("sentence-transformers", "onnx", "openai"):
        add(path + ("model", "backend"), f"{model.backend} produces dense vectors", "use `backend: bm25` for sparse vectors")
