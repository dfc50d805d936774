#!/usr/bin/env python3
"""Writes corpus.json: what CPython computes, with the packages pinned in ../packages.txt, for
the calls grader code makes to nltk, rouge-score and sympy, on a small fixed corpus. The e2e test
`the_bundled_text_packages_match_cpython_on_the_reference_corpus` runs the same calls inside the
`python` grader and compares (1e-12 for floats, exact for strings).

Run it in a venv with the pinned versions (it refuses others):

    python3 -m venv target/pyref
    target/pyref/bin/pip install nltk==3.9.1 rouge-score==0.1.2 sympy==1.14.0 mpmath==1.3.0
    target/pyref/bin/python graders/python/reference/generate.py

Calls (candidate = the graded text, reference = the expected text, both `.split()`):
- bleu:         nltk.translate.bleu_score.sentence_bleu([reference], candidate) (default weights,
                no smoothing)
- bleu_smooth1: the same with smoothing_function=SmoothingFunction().method1
- bleu_smooth4: the same with SmoothingFunction().method4
- bleu_bigram:  weights=(0.5, 0.5), SmoothingFunction().method2
- corpus_bleu:  corpus_bleu over all pairs (one value, in "corpus")
- stems:        nltk.stem.porter.PorterStemmer().stem(w) of each reference word
- rouge1/rouge2/rougeL/rougeLsum: RougeScorer([...], use_stemmer=True).score(reference,
                candidate)[type] as [precision, recall, fmeasure]
- rouge_multi:  RougeScorer(['rougeL']).score_multi([reference, candidate[::-1]-joined], candidate)
- sympy:        for each expression pair, str(sympy.simplify(parse_expr(a) - parse_expr(b))) and
                whether it is 0
"""

import json
import os
import sys
from importlib.metadata import version

PINNED = {"nltk": "3.9.1", "rouge-score": "0.1.2", "sympy": "1.14.0", "mpmath": "1.3.0"}

PAIRS = [
    ("the cat sat on the mat", "the cat is on the mat"),
    ("a quick brown fox jumps over the lazy dog", "the quick brown fox jumped over the lazy dog"),
    ("there is a cat on the mat", "the cat is on the mat"),
    ("it is a guide to action which ensures that the military always obeys the commands of the party",
     "it is a guide to action that ensures that the military will forever heed party commands"),
    ("he read the book because he was interested in world history",
     "he was interested in world history because he read the book"),
    ("running runners ran quickly through the running tracks",
     "the runner runs quickly on the track"),
    ("completely different words here", "nothing in common at all"),
    ("identical sentence for both sides", "identical sentence for both sides"),
    ("short", "a much longer reference sentence with many more words in it"),
    ("the generalization of organizations is happening nationally",
     "organizational generalizations happen nationwide"),
    ("Paris is the capital of France.", "The capital of France is Paris."),
    ("one two three four five six seven eight", "one two three four five six seven nine"),
]

EXPRESSIONS = [
    ("sin(x)**2 + cos(x)**2", "1"),
    ("(x**2 - 1)/(x - 1)", "x + 1"),
    ("2*x + 3*x", "5*x"),
    ("exp(log(x))", "x"),
    ("(x + 1)**2", "x**2 + 2*x + 1"),
    ("x**2 + 1", "x**2 - 1"),
    ("sqrt(8)", "2*sqrt(2)"),
    ("diff(x**3, x)", "3*x**2"),
    ("integrate(2*x, x)", "x**2"),
    ("Rational(1, 3) + Rational(1, 6)", "Rational(1, 2)"),
]


def main():
    for package, pinned in PINNED.items():
        if version(package) != pinned:
            sys.exit("%s is %s, the grader bundles %s" % (package, version(package), pinned))
    import sympy
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu
    from rouge_score import rouge_scorer
    from sympy.parsing.sympy_parser import parse_expr

    smooth = SmoothingFunction()
    stemmer = PorterStemmer()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    multi = rouge_scorer.RougeScorer(["rougeL"])
    rows = []
    for candidate, reference in PAIRS:
        c, r = candidate.split(), reference.split()
        rouge = scorer.score(reference, candidate)
        rows.append({
            "candidate": candidate,
            "reference": reference,
            "bleu": sentence_bleu([r], c),
            "bleu_smooth1": sentence_bleu([r], c, smoothing_function=smooth.method1),
            "bleu_smooth4": sentence_bleu([r], c, smoothing_function=smooth.method4),
            "bleu_bigram": sentence_bleu([r], c, weights=(0.5, 0.5), smoothing_function=smooth.method2),
            "stems": [stemmer.stem(w) for w in r],
            **{k: [v.precision, v.recall, v.fmeasure] for k, v in rouge.items()},
            "rouge_multi": list(multi.score_multi([reference, " ".join(reversed(c))], candidate)["rougeL"]),
        })
    corpus = corpus_bleu([[p[1].split()] for p in PAIRS], [p[0].split() for p in PAIRS])
    x = sympy.Symbol("x")
    algebra = []
    for a, b in EXPRESSIONS:
        difference = sympy.simplify(parse_expr(a) - parse_expr(b))
        algebra.append({"a": a, "b": b, "difference": str(difference), "equal": difference == 0})
    out = {
        "about": "Reference values for graders/python's bundled packages; regenerate with generate.py",
        "versions": {p: version(p) for p in PINNED},
        "python": "%d.%d.%d" % sys.version_info[:3],
        "pairs": rows,
        "corpus_bleu": corpus,
        "sympy": algebra,
    }
    del x
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
