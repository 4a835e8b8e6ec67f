"""The demo's pipeline steps and its classifier: plain functions over Arrow tables.

Each step is what a team would write anyway; mlprov records it when it runs inside a
pipeline. Near-duplicates are found with character n-gram TF-IDF vectors and cosine
similarity (scikit-learn), keeping the first ticket of each group.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["near_duplicates", "normalize", "redact", "split", "train"]

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?:\+?\d{1,3}[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]?\d{4}(?:x\d+)?")


def _with_text(table: pa.Table, texts: list[str]) -> pa.Table:
    at = table.column_names.index("text")
    return table.set_column(at, "text", pa.array(texts, pa.string()))


def normalize(table: pa.Table) -> pa.Table:
    """normalize-v1: collapse runs of whitespace and trim."""
    return _with_text(table, [" ".join(t.split()) for t in table.column("text").to_pylist()])


def redact(table: pa.Table) -> pa.Table:
    """pii-redaction-v3: e-mail addresses and phone numbers in the text become placeholders."""
    texts = table.column("text").to_pylist()
    return _with_text(table, [PHONE.sub("[phone]", EMAIL.sub("[email]", t)) for t in texts])


def near_duplicates(table: pa.Table, threshold: float) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Which rows repeat an earlier row (cosine similarity of character 3-5-gram TF-IDF at
    least `threshold`), and for each the key of the earlier row kept in its place."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [t.lower() for t in table.column("text").to_pylist()]
    keys = table.column("ticket_id").to_pylist()
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit_transform(texts)
    similar = (vectors @ vectors.T).tocsr()
    dupe = np.zeros(len(texts), dtype=bool)
    kept: list[Any] = [None] * len(texts)
    for j in range(len(texts)):
        row = similar.getrow(j)
        for i, score in zip(row.indices, row.data, strict=True):
            if i < j and not dupe[i] and score >= threshold:
                dupe[j], kept[j] = True, keys[i]
                break
    return dupe, kept


def split(table: pa.Table, holdout: bool) -> pa.Table:
    """split-v1: every fifth ticket (by id) is held out for evaluation."""
    ids = np.asarray(table.column("ticket_id").to_numpy())
    return table.filter(pa.array((ids % 5 == 0) == holdout))


def train(training: pa.Table, evaluation: pa.Table, folder: Path) -> tuple[float, dict[str, Any]]:
    """Fit a TF-IDF + logistic-regression ticket classifier; save it and its config in
    `folder`; return its accuracy on the evaluation set, and the config."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    config = {
        "model": "tfidf-logistic-regression",
        "ngram_range": [1, 2],
        "C": 5.0,
        "max_iter": 2000,
        "target": "category",
    }
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(C=config["C"], max_iter=config["max_iter"]),
    )
    model.fit(training.column("text").to_pylist(), training.column("category").to_pylist())
    guessed = model.predict(evaluation.column("text").to_pylist())
    truth = np.asarray(evaluation.column("category").to_pylist())
    accuracy = float(np.mean(guessed == truth)) if len(truth) else 0.0
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return accuracy, config
