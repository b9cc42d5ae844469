#!/usr/bin/env python3
"""Vectors of NLTK's averaged perceptron POS tagger (`nltk.pos_tag`, English) for
plugins/perplexity/src/ifeval/tagger.rs.

NLTK's real `averaged_perceptron_tagger_eng` model cannot be fetched here, so this script trains a
tiny one with NLTK's own trainer on a seeded synthetic Penn-Treebank-tagged corpus, saves it with
NLTK's own writer (`PerceptronTagger.save_to_json`) into
tests/fixtures/nltk_data/taggers/averaged_perceptron_tagger_eng/, then loads it back the way
`nltk.pos_tag` does (NLTK_DATA pointing at tests/fixtures/nltk_data) and tags 300+ word lists,
writing tests/golden/nltk_tagger.json = {"nltk_version", "cases": [{"words", "tags"}], "handmade"}.
"handmade" is a small hand-written model (weights/tagdict/classes inline) with its own cases,
tagged by NLTK's PerceptronTagger.tag, to pin the tie-break and the summation order that a trained
model rarely exercises.

Needs python3 + nltk (pip install nltk). `--check` rebuilds everything in a temp dir and fails if
the committed fixture files or the golden file differ from what this script produces.
"""

import json
import os
import random
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
FIXTURE_ROOT = os.path.join(REPO, "tests", "fixtures", "nltk_data")
MODEL_SUBDIR = os.path.join("taggers", "averaged_perceptron_tagger_eng")
GOLDEN = os.path.join(REPO, "tests", "golden", "nltk_tagger.json")

CORPUS_SEED = 20240611
TRAIN_SEED = 7
CASES_SEED = 99
N_SENTENCES = 240
N_ITER = 3

# Vocabulary (word -> possible tags come from the grammar below; several words are ambiguous so
# the model, not the tag dictionary, decides them).
DT = ["the"] * 6 + ["a"] * 3 + ["an", "this", "every", "that"]
JJ = ["big", "small", "red", "new", "old", "well-known", "long-term", "naïve", "quick", "green"]
NN = ["dog", "cat", "house", "report", "market", "run", "plan", "rate", "year", "city", "café",
      "straße", "οδός", "state-of-the-art", "walk", "book"]
NNS = ["dogs", "cats", "houses", "reports", "markets", "plans", "rates", "years", "books",
       "walks", "runs"]
NNP = ["John", "Mary", "London", "Zürich", "IBM", "New-York", "Paris", "Ødegaard"]
VB = ["run", "plan", "see", "make", "go", "walk", "book", "rate"]
VBD = ["saw", "ran", "made", "went", "planned", "rose", "walked", "booked"]
VBZ = ["runs", "sees", "makes", "goes", "plans", "rises", "walks", "books"]
RB = ["quickly", "slowly", "very", "well", "often", "there"]
IN = ["in", "on", "of", "with", "after", "since", "that", "by"]
CD_NUM = ["3", "42", "1,000", "7.5", "12", "250", "two", "three", "10-15", "99"]
CD_YEAR = ["1999", "2024", "1850", "2001", "1066"]
MD = ["will", "can", "may"]
PRP = ["he", "she", "it", "they"]
CC = ["and", "but"]
END = [".", ".", ".", "!", "?"]


def cap(w):
    return w[:1].upper() + w[1:]


def noun_phrase(r, plural=None):
    if r.random() < 0.2:
        return [(r.choice(NNP), "NNP")]
    if r.random() < 0.12:
        return [(r.choice(PRP), "PRP")]
    out = [(r.choice(DT), "DT")] if r.random() < 0.8 else []
    if r.random() < 0.1:
        out = [(r.choice(CD_NUM), "CD")]
        plural = True
    if r.random() < 0.45:
        out.append((r.choice(JJ), "JJ"))
    if r.random() < 0.15:
        out.insert(len(out) - 1 if out and out[-1][1] == "JJ" else len(out), ("very", "RB"))
    if plural is None:
        plural = r.random() < 0.35
    out.append((r.choice(NNS), "NNS") if plural else (r.choice(NN), "NN"))
    return out


def verb_phrase(r):
    k = r.random()
    if k < 0.3:
        v = [(r.choice(VBZ), "VBZ")]
    elif k < 0.65:
        v = [(r.choice(VBD), "VBD")]
    else:
        v = [(r.choice(MD), "MD"), (r.choice(VB), "VB")]
    if r.random() < 0.2:
        v.insert(len(v) - 1, (r.choice(RB), "RB"))
    if r.random() < 0.7:
        v += noun_phrase(r)
    if r.random() < 0.45:
        if r.random() < 0.35:
            v += [(r.choice(IN), "IN"), (r.choice(CD_YEAR), "CD")]
        else:
            v += [(r.choice(IN), "IN")] + noun_phrase(r)
    elif r.random() < 0.25:
        v.append((r.choice(RB), "RB"))
    return v


def sentence(r):
    s = noun_phrase(r) + verb_phrase(r)
    if r.random() < 0.2:
        s += [(",", ","), (r.choice(CC), "CC")] + noun_phrase(r) + verb_phrase(r)
    if r.random() < 0.15:
        s = [(r.choice(IN), "IN"), (r.choice(CD_YEAR), "CD"), (",", ",")] + s
    s.append((r.choice(END), "."))
    w, t = s[0]
    if t not in ("NNP",):
        s[0] = (cap(w), t)
    return s


def corpus():
    r = random.Random(CORPUS_SEED)
    return [sentence(r) for _ in range(N_SENTENCES)]


# --- cases -------------------------------------------------------------------------------------

UNSEEN = ["zorb", "glimmering", "Quux", "frobnicates", "blorped", "xylophones", "Kazakh",
          "unhappily", "re-enter", "ü", "東京", "😀", "ﬁne", "İstanbul", "ΣΟΦΟΣ", "x", "ab"]
ODD = ["", "-", "--", "-5", "-abc", "a-", "a-b-c", "3rd", "12345", "123", "0", "0000", "2024",
       "１９９９", "١٩٩٩", "²⁰²⁴", "①②③④", "½", "٣x", "3.14", "1,000,000", "'s", "n't", "...",
       ";", ":", "(", ")", "\"", "New York", " the", "the ", "\t", "ΟΔΌΣ", "ΟΔΟΣ", "CAFÉ",
       "STRASSE", "Straße", "ÖDEGAARD", "ødegaard", "\u1c89x", "A\ua7cbB", "ǅ", "ß", "ﬀ",
       "ÅNGSTRÖM", "\u0130", "I\u0307", "ΣΑ", "ΑΣ", "Σ", "ᲀ"]


def vocab():
    seen = []
    for lst in (DT, JJ, NN, NNS, NNP, VB, VBD, VBZ, RB, IN, CD_NUM, CD_YEAR, MD, PRP, CC, END,
                [","]):
        for w in lst:
            if w not in seen:
                seen.append(w)
    return seen


def case_variants(w, r):
    k = r.randrange(4)
    if k == 0:
        return w.upper()
    if k == 1:
        return w.lower()
    if k == 2:
        return cap(w)
    return w


def cases():
    r = random.Random(CASES_SEED)
    out = [[]]
    voc = vocab()
    # single words: every vocabulary word and odd token, plus case variants
    out += [[w] for w in voc]
    out += [[w] for w in ODD + UNSEEN]
    out += [[w.upper()] for w in voc[:30]]
    # fresh sentences from the grammar, plain and perturbed
    for i in range(140):
        words = [w for w, _ in sentence(r)]
        k = i % 7
        if k == 1:
            words = words[:-1]  # punctuation stripped
        elif k == 2:
            words = [case_variants(w, r) for w in words]
        elif k == 3:
            j = r.randrange(len(words))
            words[j] = r.choice(UNSEEN + ODD)
        elif k == 4:
            words = [w.lower() for w in words]
        elif k == 5:
            words = words + [r.choice(ODD)] + [w for w, _ in sentence(r)]
        elif k == 6:
            r.shuffle(words)
        out.append(words)
    # random bags of vocabulary / odd / unseen tokens
    pool = voc + ODD + UNSEEN
    for _ in range(60):
        out.append([r.choice(pool) for _ in range(r.randint(2, 12))])
    # pairs differing only in case
    for w in ["the", "run", "john", "london", "plans", "book", "ibm", "zürich", "café"]:
        for v in (w, w.upper(), cap(w)):
            out.append(["I", "saw", v, "."])
            out.append([v, "runs", "."])
    return out


# --- handmade model: ties, summation order, counts, unknown labels ----------------------------

HANDMADE = {
    "weights": {
        # label A gets ((0 + 0.1) + 0.2) + 0.3 = 0.6000000000000001 in feature order, label B gets
        # 0.6 from one feature: A wins. Summed in another order A would tie B and B would win.
        "bias": {"A": 0.1, "B": 0.25, "C": 0.25, "Z": 100.0},
        "i suffix xyz": {"A": 0.2},
        "i pref1 x": {"A": 0.3},
        "i word xyz": {"B": 0.35},
        # "tie" word: B and C tie at 0.25 + 0.5; the larger label, C, wins.
        "i word tie": {"B": 0.5, "C": 0.5},
        # all known labels negative: A and D (no weights) tie at 0.0 -> D
        "i word neg": {"A": -1.0, "B": -5, "C": -1.25},
        # the previous tag feeds the next word
        "i-1 tag D": {"A": 3},
        "i-1 tag C": {"B": 2.5},
        "i+1 word !YEAR": {"C": 9.0},
        "i word !HYPHEN": {"B": 1.5},
        "i word !DIGITS": {"C": 1.5},
        "i word !YEAR": {"A": 7.5},
        "i-2 tag -START2-": {"A": 0.0001},
        "i suffix é": {"C": 0.5},
        "i word -0": {"A": -0.0, "B": -0.25, "C": -0.25},
    },
    "tagdict": {"the": "D", "empty": "", "The": "A"},
    "classes": ["A", "B", "C", "D"],
}

HANDMADE_CASES = [
    [], ["xyz"], ["tie"], ["neg"], ["the", "xyz"], ["the", "tie", "xyz"], ["tie", "tie", "xyz"],
    ["empty"], ["empty", "tie"], ["The", "neg"], ["THE", "neg"], ["a-b"], ["2024"], ["20245"],
    ["x", "2024"], ["é"], ["-0"], ["-0", "xyz", "tie", "neg", "the", "2024", "a-b", "7x", ""],
    [""], ["zzz"], ["neg", "neg", "neg"],
]


def build(data_root, golden_path):
    """Train, save and tag with nltk, reading/writing only under data_root and golden_path."""
    os.environ["NLTK_DATA"] = data_root  # read once, when nltk is imported
    import nltk
    from nltk.tag.perceptron import PerceptronTagger

    assert nltk.data.path[0] == data_root, nltk.data.path
    model_dir = os.path.join(data_root, MODEL_SUBDIR)
    os.makedirs(os.path.dirname(model_dir), exist_ok=True)

    tagger = PerceptronTagger(load=False)
    random.seed(TRAIN_SEED)
    tagger.train(corpus(), nr_iter=N_ITER)
    # `save_to_json` writes list(self.classes), whose order follows string hashing
    # (PYTHONHASHSEED); a sorted list keeps the file reproducible and is the same set on load.
    tagger.classes = sorted(tagger.classes)
    tagger.save_to_json(lang="eng", loc=model_dir)
    # NLTK creates a private 0700 folder of 0600 files; give them the usual checkout modes
    os.chmod(model_dir, 0o755)
    for name in os.listdir(model_dir):
        os.chmod(os.path.join(model_dir, name), 0o644)

    out_cases = []
    for words in cases():
        tagged = nltk.pos_tag(words)  # loads taggers/averaged_perceptron_tagger_eng from NLTK_DATA
        assert [w for w, _ in tagged] == words
        out_cases.append({"words": words, "tags": [t for _, t in tagged]})

    hm = PerceptronTagger(load=False)
    hm.decode_json_params(
        (json.loads(json.dumps(HANDMADE[k])) for k in ("weights", "tagdict", "classes"))
    )
    hm_cases = [{"words": ws, "tags": [t for _, t in hm.tag(ws)]} for ws in HANDMADE_CASES]

    golden = {
        "nltk_version": nltk.__version__,
        "cases": out_cases,
        "handmade": dict(HANDMADE, cases=hm_cases),
    }
    text = "{\n" + ",\n".join(
        [f' "nltk_version": {json.dumps(golden["nltk_version"])}',
         ' "cases": [\n' + ",\n".join("  " + json.dumps(c) for c in out_cases) + "\n ]",
         ' "handmade": ' + json.dumps(golden["handmade"])]
    ) + "\n}\n"
    with open(golden_path, "w", encoding="utf-8") as f:
        f.write(text)


def tree_files(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def main():
    if "--check" in sys.argv:
        tmp = tempfile.mkdtemp(prefix="nltk_tagger_vectors_")
        try:
            root = os.path.join(tmp, "nltk_data")
            golden = os.path.join(tmp, "nltk_tagger.json")
            build(root, golden)
            bad = []
            if tree_files(root) != tree_files(FIXTURE_ROOT):
                bad.append(FIXTURE_ROOT)
            with open(golden, "rb") as a, open(GOLDEN, "rb") as b:
                if a.read() != b.read():
                    bad.append(GOLDEN)
            if bad:
                sys.exit(f"{', '.join(bad)} differ(s) from what this script produces; rerun it")
        finally:
            shutil.rmtree(tmp)
        return
    build(FIXTURE_ROOT, GOLDEN)


if __name__ == "__main__":
    main()
