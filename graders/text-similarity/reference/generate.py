#!/usr/bin/env python3
"""Writes corpus.json: >= 200 deterministic text pairs and what the reference Python
implementations compute for each of text-similarity's metrics.

Run it in a venv with the reference packages (versions are recorded in the output):

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install rapidfuzz nltk rouge-score
    /tmp/refenv/bin/python graders/text-similarity/reference/generate.py

The Rust tests read the committed corpus.json; they never need Python.

How each metric is called (input = the graded text, reference = the expected text):
- fuzzy_match: rapidfuzz.fuzz.WRatio(input, reference, processor=rapidfuzz.utils.default_process) / 100
- bleu:  nltk sentence_bleu([reference.split()], input.split()) with default weights
         (0.25, 0.25, 0.25, 0.25), no smoothing (method0), auto_reweigh=False
- gleu:  nltk sentence_gleu([reference.split()], input.split()) (min_len=1, max_len=4)
- meteor: nltk meteor_score([reference.split()], input.split()) with defaults (str.lower,
         PorterStemmer(), alpha=0.9, beta=3, gamma=0.5) and nltk's WordNet reader over
         WordNet 3.0 from Debian's packages (see `wordnet_root`):
             apt-get install -y wordnet-base wordnet-sense-index
         (nltk's reader opens index.sense and lexnames even though synsets() does not read
         them; lexnames is written from the wordnet-base man page.) The component reads the
         same WordNet through grader-sdk/wordnet/wordnet.bin (grader-sdk/wordnet/derive.py).
- rouge_1..rouge_5, rouge_l: rouge_score.rouge_scorer.RougeScorer([type], use_stemmer=True)
         .score(target=reference, prediction=input)[type].fmeasure
"""

import atexit
import gzip
import json
import os
import random
import re
import shutil
import sys
import tempfile
from importlib.metadata import version

import nltk

from nltk.stem.porter import PorterStemmer
from nltk.translate.bleu_score import sentence_bleu
from nltk.translate.gleu_score import sentence_gleu
from nltk.translate.meteor_score import meteor_score
from rapidfuzz import fuzz, fuzz_py, utils
from rouge_score import rouge_scorer

import warnings

# method0 warns on every pair with a zero n-gram precision; the value is what we record.
warnings.filterwarnings("ignore")

ROUGE_TYPES = ["rouge1", "rouge2", "rouge3", "rouge4", "rouge5", "rougeL"]


WORDNET_DIR = "/usr/share/wordnet"


def wordnet_root():
    """An nltk_data directory holding Debian's WordNet 3.0 as nltk's `corpora/wordnet`.

    The files are copied, not linked: nltk refuses corpus paths that resolve outside its data
    directory."""
    root = tempfile.mkdtemp(prefix="flywheel-nltk-data-")
    target = os.path.join(root, "corpora", "wordnet")
    os.makedirs(target)
    for name in os.listdir(WORDNET_DIR):
        path = os.path.join(WORDNET_DIR, name)
        if os.path.isfile(path):
            shutil.copy(path, target)
    with gzip.open("/usr/share/man/man5/lexnames.5WN.gz", "rt") as f:
        lexnames = [line.split("\t")[:2] for line in f if re.match(r"^\d\d\t", line)]
    with open(os.path.join(target, "lexnames"), "w", encoding="utf-8") as f:
        for number, name in lexnames:
            f.write(f"{number}\t{name}\t0\n")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


class NoWordNet:
    """nltk's WordNet reader with no synsets: shows how many pairs the synonym stage changes."""

    def synsets(self, _word):
        return []


nltk.data.path.insert(0, wordnet_root())
from nltk.corpus import wordnet  # noqa: E402  (needs the data path above)

assert wordnet.get_version() == "3.0", wordnet.get_version()


SCORER = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=True)
STEMMER = PorterStemmer()

HAND_PAIRS = [
    ("", ""),
    ("", "something"),
    ("something", ""),
    ("   ", "   "),
    ("!!!", "???"),
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("the cat sat on the mat", "The Cat Sat On The Mat"),
    ("The cat is on the mat.", "There is a cat on the mat."),
    ("It is a guide to action which ensures that the military always obeys the commands of the party.",
     "It is a guide to action that ensures that the military will forever heed Party commands."),
    ("It is to insure the troops forever hearing the activity guidebook that party direct.",
     "It is a guide to action that ensures that the military will forever heed Party commands."),
    ("Hardware", "hardware"),
    ("Hardware", "Software"),
    ("hardware issue with the monitor", "Hardware"),
    ("Hardware", "The ticket is about a hardware issue with the monitor and the cable"),
    ("running runners ran quickly", "the runner runs quick"),
    ("connection connected connecting connections", "connect"),
    ("generalization of the relational operational models", "generalize relate operate model"),
    ("happiness and sadness are feelings", "happy and sad feeling"),
    ("Café crème brûlée", "cafe creme brulee"),
    ("naïve façade coöperate", "naive facade cooperate"),
    ("Ελληνικά κείμενα εδώ", "ελληνικά κείμενα"),
    ("Русский текст для проверки", "русский текст"),
    ("日本語のテキスト", "日本語 テキスト"),
    ("中文 文本 测试", "中文 测试"),
    ("emoji 😀 test 🚀 rocket", "emoji test rocket"),
    ("İstanbul İzmir", "istanbul izmir"),
    ("STRASSE straße", "strasse Straße"),
    ("x² + y² = z²", "x2 + y2 = z2"),
    ("½ cup of sugar", "half cup of sugar"),
    ("fn main() { println!(\"hello\"); }", "fn main() { println!(\"hello, world\"); }"),
    ("def grade(sample, item) -> float:\n    return 1.0", "def grade(sample, item):\n    return 0.0"),
    ("src/lib.rs src/main.rs", "src/main.rs src/lib.rs"),
    ("let x = vec![1, 2, 3];", "let x = vec![1,2,3];"),
    ("SELECT * FROM users WHERE id = 1;", "select * from users where id=1"),
    ("snake_case_name", "snake case name"),
    ("camelCaseName", "camel_case_name"),
    ("a\tb\nc", "a b c"),
    ("tabs\tand\nnewlines\r\nmixed", "tabs and newlines mixed"),
    ("the the the the the the the", "the cat"),
    ("the cat", "the the the the the the the"),
    ("a", "a"),
    ("a", "b"),
    ("ab", "ba"),
    ("abc", "abcd"),
    ("short", "a much much longer string that contains short somewhere in the middle of it all"),
    ("a much much longer string that contains short somewhere in the middle of it all", "short"),
    ("new york mets vs atlanta braves", "atlanta braves vs new york mets"),
    ("new york mets", "new york mets vs atlanta braves"),
    ("fuzzy wuzzy was a bear", "wuzzy fuzzy was a bear"),
    ("fuzzy was a bear", "fuzzy fuzzy was a bear"),
    ("this is a test", "this is a test!"),
    ("1234567890", "123456789"),
    ("3.14159", "3.14"),
    ("yes", "no"),
    ("The quick brown fox jumps over the lazy dog",
     "A completely different text where the quick brown fox jumps over the lazy dog and then runs away into the dark forest near the river bank far away from home"),
    ("police police police police", "police"),
    ("relational conditional rational national", "relate condition ration nation"),
    ("sky skies dying lying tying news innings", "sky sky die lie tie news inning"),
    ("agreed feed bleed proceed exceed succeed", "agree fee blee proceed exceed succeed"),
    ("hopping hoping hopped hoped", "hop hope"),
    ("caresses ponies ties caress cats", "caress poni tie caress cat"),
    ("controlling rolling falling filling", "control roll fall fill"),
    ("electrical electricity electric", "electr"),
    ("adjustable adjustment adjusting", "adjust"),
    ("yelling yell yelled yellow", "yell"),
    ("syzygy rhythm crypt", "syzygies rhythms crypts"),
    ("ABC-123 / DEF_456", "abc 123 def 456"),
    ("   leading and trailing spaces   ", "leading and trailing spaces"),
    ("punctuation, everywhere; really: yes!", "punctuation everywhere really yes"),
    ("…ellipsis — dashes – and “quotes”", "ellipsis dashes and quotes"),
    ("e\u0301cole de\u0301compose\u0301e", "école décomposée"),
    ("हिन्दी पाठ परीक्षण", "हिन्दी पाठ"),
    ("نص عربي للاختبار", "نص عربي"),
    ("ภาษาไทย ทดสอบ", "ภาษาไทย"),
    ("info\x1fseparator\x1ctext", "info separator text"),
    ("non\u00a0breaking\u2003spaces", "non breaking spaces"),
    ("Ⅻ roman numeral ⅻ", "xii roman numeral"),
    ("ΣΊΣΥΦΟΣ σίσυφος", "σίσυφοσ ΣΊΣΥΦΟΣ"),
    ("The implementation of the configuration management subsystem was substantially reorganized during the last release cycle",
     "configuration management"),
    ("configuration management reorganized", "The implementation of the configuration management subsystem was substantially reorganized during the last release cycle and nobody noticed any regression whatsoever in production"),
    ("x" * 100, "x" * 70 + "y" * 30),
    ("abcdefghij" * 12, "jihgfedcba" * 7),
    # WordNet synonyms (METEOR's third stage).
    ("e-mail e-mails", "email emails"),
    ("email emails", "e-mail e-mails"),
    ("send me an e-mail", "send me an email"),
    ("the quick brown fox", "the fast brown fox"),
    ("a big house", "a large home"),
    ("the mice ran quickly", "the mouse ran fast"),
    ("he is quicker than her", "he is faster than her"),
    ("the children went to school", "the kids went to school"),
    ("buy a car", "purchase an automobile"),
    ("the movie was good", "the film was good"),
    ("begin the task", "start the job"),
    ("the geese flew over the lake", "the goose flew over the lake"),
    ("shut the door", "close the door"),
    ("we were happy", "we were glad"),
    ("fix the error", "repair the mistake"),
    ("the result was a failure", "the outcome was a loser"),
    ("bigger better faster stronger", "larger good quicker strong"),
    ("she sang songs", "she sing vocal"),
    ("oxen and feet", "ox and foot"),
    ("new_york is big", "new_york is large"),
    ("snake_case names", "snake_case name"),
    ("s s s", "second sulfur s"),
    ("dies dying died", "die death dead"),
    ("The PARTY commands", "the company command"),
    ("worse worst", "bad badly"),
    ("went gone going", "go went travel"),
    ("acting actor actress", "act role player"),
    ("stopped halting ceased", "stop halt cease"),
    ("couch sofa lounge", "sofa couch lounge"),
    ("U.S. America", "us united_states america"),
]

SYNONYM_VOCAB = (
    "quick big small happy sad begin end fix error result car movie house child buy sell "
    "job task start stop close open good bad fast slow big little answer question help "
    "show tell make build run walk talk speak see look find search check test file record "
    "list item value number count score grade mark pass fail right wrong correct true "
    "false clear plain simple hard easy strong weak rich poor old new young ancient modern "
    "mice geese feet children went gone better best worse worst"
).split()


def wordnet_synonyms(word):
    names = {
        lemma.name()
        for synset in wordnet.synsets(word)
        for lemma in synset.lemmas()
        if "_" not in lemma.name()
    }
    return sorted(names)


def synonym_pairs(rng, count):
    """Sentences and a copy with words replaced by WordNet synonyms, inflected or cased."""
    pairs = []
    for _ in range(count):
        reference = [rng.choice(SYNONYM_VOCAB) for _ in range(rng.randrange(1, 9))]
        hypothesis = []
        for word in reference:
            synonyms = wordnet_synonyms(word)
            if synonyms and rng.random() < 0.6:
                word = rng.choice(synonyms)
            roll = rng.random()
            if roll < 0.15:
                word += rng.choice(["s", "es", "ed", "ing", "er", "est"])
            elif roll < 0.25:
                word = word.capitalize()
            hypothesis.append(word)
        if rng.random() < 0.3 and len(hypothesis) > 1:
            i, j = rng.randrange(len(hypothesis)), rng.randrange(len(hypothesis))
            hypothesis[i], hypothesis[j] = hypothesis[j], hypothesis[i]
        if rng.random() < 0.5:
            pairs.append((" ".join(hypothesis), " ".join(reference)))
        else:
            pairs.append((" ".join(reference), " ".join(hypothesis)))
    return pairs

VOCAB = (
    "the a an of to in for on with by from at as is are was were be been has have had "
    "grader prompt model output score sample item file plan diff test review fix code "
    "function module error result value config version deploy rollback agent task "
    "running quickly generalization relational happiness connection adjustment "
    "user users data database query server client request response token budget "
    "cat dog bird tree river house garden window door table chair book"
).split()

SYNONYMS = {
    "quickly": "fast", "error": "failure", "result": "outcome", "file": "document",
    "test": "check", "fix": "repair", "code": "source", "users": "people", "house": "home",
    "big": "large", "running": "runs", "connection": "connected", "happiness": "happy",
}


def perturb(rng, words):
    words = list(words)
    op = rng.randrange(9)
    if op == 0 and len(words) > 1:
        del words[rng.randrange(len(words))]
    elif op == 1 and len(words) > 1:
        i, j = rng.randrange(len(words)), rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    elif op == 2:
        words = [SYNONYMS.get(w, w) for w in words]
    elif op == 3:
        words = [w.upper() if rng.random() < 0.3 else w for w in words]
    elif op == 4:
        words = [w + rng.choice([",", ".", "!", "?", ";"]) if rng.random() < 0.3 else w for w in words]
    elif op == 5:
        words = words[: max(1, len(words) // 2)]
    elif op == 6:
        words = words + words[: rng.randrange(1, 4)]
    elif op == 7:
        words.insert(rng.randrange(len(words) + 1), rng.choice(VOCAB))
    else:
        words = [w[:-1] if len(w) > 3 and rng.random() < 0.3 else w for w in words]
    return words


def generated_pairs(rng, count):
    pairs = []
    for n in range(count):
        length = rng.choice([1, 2, 3, 4, 5, 7, 10, 15, 25, 40])
        reference = [rng.choice(VOCAB) for _ in range(length)]
        hypothesis = reference
        for _ in range(rng.randrange(0, 4)):
            hypothesis = perturb(rng, hypothesis)
        if n % 10 == 9:
            hypothesis = [rng.choice(VOCAB) for _ in range(rng.randrange(1, 12))]
        pairs.append((" ".join(hypothesis), " ".join(reference)))
    return pairs


def metrics(candidate, reference):
    hyp, ref = candidate.split(), reference.split()
    out = {
        "fuzzy_match": fuzz.WRatio(candidate, reference, processor=utils.default_process) / 100,
        "bleu": float(sentence_bleu([ref], hyp)),
        "gleu": float(sentence_gleu([ref], hyp)),
        "meteor": float(meteor_score([ref], hyp, wordnet=wordnet)),
    }
    rouge = SCORER.score(target=reference, prediction=candidate)
    for kind in ROUGE_TYPES:
        name = "rouge_l" if kind == "rougeL" else "rouge_" + kind[-1]
        out[name] = rouge[kind].fmeasure
    return out


def main():
    rng = random.Random(20261125)
    pairs = HAND_PAIRS + generated_pairs(rng, 200) + synonym_pairs(random.Random(20261130), 150)
    rows = []
    mismatched_py = 0
    synonym_changed = 0
    for candidate, reference in pairs:
        row = {"input": candidate, "reference": reference}
        row.update(metrics(candidate, reference))
        rows.append(row)
        # rapidfuzz's C++ and pure-Python scorers should agree; say so when they do not.
        py = fuzz_py.WRatio(candidate, reference, processor=utils.default_process) / 100
        if abs(py - row["fuzzy_match"]) > 1e-9:
            mismatched_py += 1
        no_synonyms = meteor_score([reference.split()], candidate.split(), wordnet=NoWordNet())
        if abs(no_synonyms - row["meteor"]) > 1e-9:
            synonym_changed += 1
    stems = sorted({w.lower() for c, r in pairs for w in (c + " " + r).split()})
    corpus = {
        "about": "Reference values for graders/text-similarity; regenerate with generate.py",
        "versions": {p: version(p) for p in ("rapidfuzz", "nltk", "rouge-score")},
        "python": sys.version.split()[0],
        "pairs": rows,
        "porter_stems": {w: STEMMER.stem(w) for w in stems},
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(corpus, f, ensure_ascii=False, indent=1, sort_keys=False)
        f.write("\n")
    print(f"wrote {len(rows)} pairs and {len(stems)} stems to {out}; "
          f"rapidfuzz C++ vs Python WRatio mismatches: {mismatched_py}; "
          f"pairs whose meteor the WordNet synonym stage changes: {synonym_changed}")


if __name__ == "__main__":
    main()
