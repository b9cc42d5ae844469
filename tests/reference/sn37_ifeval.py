#!/usr/bin/env python3
"""An independent reference for SN37's generated tasks (macrocosm-os/finetuning afd4403), written
from the subnet's rules with CPython's `random`, `difflib` and NLTK (Punkt, the averaged
perceptron tagger): the word-sorting challenges, the IF-eval v1/v2 samples (rules, prompts) and
their scores for given responses. The tagger model is the tiny one in
tests/fixtures/nltk_data (the real one is NLTK's download; the algorithm is the same).

Writes tests/golden/sn37_ifeval.json; `--check` fails when the file differs.
Needs: python3 -m pip install nltk
"""

import difflib
import json
import os
import random
import string
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OUT = os.path.join(ROOT, "tests", "golden", "sn37_ifeval.json")
os.environ["NLTK_DATA"] = os.path.join(ROOT, "tests", "fixtures", "nltk_data")



def sn37_sum(xs):
    """SN37's validators run CPython 3.9-3.11, whose sum() adds floats left to right; 3.12's
    compensates. On a newer interpreter, add as the older sum() does."""
    if sys.version_info < (3, 12):
        return sum(xs)
    total = 0
    for x in xs:
        total += x
    return total


import nltk  # noqa: E402
from nltk.tokenize.punkt import PunktSentenceTokenizer  # noqa: E402

# ---- word sorting --------------------------------------------------------------------------


def word_sorting(words, seed, samples, lo=2, hi=20, min_len=3):
    pool = [w.lower() for w in words if len(w) >= min_len]
    rng = random.Random(seed)
    out = []
    for _ in range(samples):
        k = rng.randint(lo, hi)
        picked = rng.sample(pool, k)
        out.append(["Sort the following words alphabetically: " + " ".join(picked) + ". ", " ".join(sorted(picked))])
    return out


# ---- IF-eval rules -------------------------------------------------------------------------

WC_MAX, WC_MIN, SC_MAX, SC_MIN, UPPER, LOWER, COMMA = 1, 2, 3, 4, 5, 6, 7
KW_IN, KW_FREQ, KW_NOT, BULLETS, STARTS, ENDS, QUOTE = 8, 9, 10, 11, 12, 13, 14
V1 = {WC_MAX, WC_MIN, SC_MAX, SC_MIN, UPPER, LOWER, COMMA}
V2 = {BULLETS, ENDS, KW_IN, KW_FREQ, KW_NOT, QUOTE}
ENDINGS = ["Let me know if you have additional questions.", "Is there anything else I can help with?", "Hope that helps."]
CLASH = {
    WC_MAX: {WC_MIN, SC_MAX, SC_MIN, BULLETS, ENDS},
    WC_MIN: {WC_MAX, SC_MAX},
    SC_MAX: {WC_MIN, WC_MAX, SC_MIN, BULLETS, ENDS},
    SC_MIN: {WC_MAX, SC_MAX},
    UPPER: {LOWER},
    LOWER: {UPPER},
    BULLETS: {WC_MAX, SC_MAX},
    ENDS: {WC_MAX, SC_MAX, QUOTE},
    QUOTE: {ENDS},
}
NAMES = {
    WC_MAX: "word_count_at_most", WC_MIN: "word_count_at_least", SC_MAX: "sentence_count_at_most",
    SC_MIN: "sentence_count_at_least", UPPER: "all_upper_case", LOWER: "all_lower_case", COMMA: "no_commas",
    KW_IN: "keyword_inclusion", KW_FREQ: "keyword_frequency", KW_NOT: "keyword_forbidden",
    BULLETS: "bullet_count_frequency", ENDS: "ends_with", QUOTE: "quotation",
}
GOOD_TAGS = {"JJ", "JJR", "JJS", "NN", "NNS", "NNP", "NNPS", "RB", "RBR", "RBS", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ"}


def words_of(text):
    return text.translate(str.maketrans("", "", string.punctuation)).split()


def pick_keyword(text, used, rng):
    used = [u.lower() for u in used]
    tagged = nltk.pos_tag(words_of(text))
    good = [w for w, t in tagged if t in GOOD_TAGS and len(w) > 2 and w.lower() not in used]
    if good:
        return rng.choice(good)
    rest = [w for w in words_of(text) if w.lower() not in used]
    if not rest:
        return rng.choice(["answer", "question", "response"])
    return rng.choice(rest)


def make_rule(rid, rules, answers, rng):
    used = [k for r in rules for k in keywords_of(r)]
    if rid in (WC_MAX, WC_MIN):
        return {"rule": NAMES[rid], "count": rng.choice(list(range(25, 50, 5)))}
    if rid == SC_MAX:
        return {"rule": NAMES[rid], "count": rng.choice([1, 2, 3])}
    if rid == SC_MIN:
        return {"rule": NAMES[rid], "count": rng.choice([2, 3])}
    if rid in (UPPER, LOWER, COMMA, QUOTE):
        return {"rule": NAMES[rid]}
    if rid in (KW_IN, KW_NOT):
        return {"rule": NAMES[rid], "keywords": [pick_keyword(a, used, rng) for a in answers]}
    if rid == KW_FREQ:
        pairs = []
        for a in answers:
            w = pick_keyword(a, used, rng)
            pairs.append([w, rng.randint(1, 4)])
        return {"rule": NAMES[rid], "keywords": pairs}
    if rid == BULLETS:
        return {"rule": NAMES[rid], "count": rng.choice([1, 2, 3])}
    if rid == ENDS:
        return {"rule": NAMES[rid], "phrase": rng.choice(ENDINGS)}
    raise ValueError(rid)


def rule_id(rule):
    return next(k for k, v in NAMES.items() if v == rule["rule"])


def keywords_of(rule):
    if rule["rule"] == "keyword_frequency":
        return [w for w, _ in rule["keywords"]]
    return list(rule.get("keywords", []))


def s(n, one, many):
    return f"{n} {one if n == 1 else many}"


def rule_line(rule, i):
    name = rule["rule"]
    if name == "word_count_at_most":
        return f"The response must be no more than {s(rule['count'], 'word', 'words')}."
    if name == "word_count_at_least":
        return f"The response must be at least {s(rule['count'], 'word', 'words')}."
    if name == "sentence_count_at_most":
        return f"The response must be no more than {s(rule['count'], 'sentence', 'sentences')}."
    if name == "sentence_count_at_least":
        return f"The response must be at least {s(rule['count'], 'sentence', 'sentences')}."
    if name == "all_upper_case":
        return "All letters in the response must be uppercase."
    if name == "all_lower_case":
        return "All letters in the response must be lowercase."
    if name == "no_commas":
        return "Do not use any commas in your response."
    if name == "keyword_inclusion":
        return f'The word "{rule["keywords"][i]}" must be included in the response.'
    if name == "keyword_frequency":
        w, n = rule["keywords"][i]
        return f'Include the word "{w}" {s(n, "time", "times")}.'
    if name == "keyword_forbidden":
        return f'The word "{rule["keywords"][i]}" must not be included in the response.'
    if name == "bullet_count_frequency":
        bullet = "bullet point" if rule["count"] == 1 else "bullet points"
        return f"The response must contain exactly {rule['count']} '*' {bullet} in markdown format."
    if name == "ends_with":
        return f'End your response with the exact phrase "{rule["phrase"]}"'
    if name == "quotation":
        return "Wrap your entire response in double quotation marks."
    raise ValueError(name)


def follows(rule, text, i):
    name = rule["rule"]
    low = [w.lower() for w in words_of(text)]
    if name == "word_count_at_most":
        return len(text.split()) <= rule["count"]
    if name == "word_count_at_least":
        return len(text.split()) >= rule["count"]
    if name == "sentence_count_at_most":
        return len(PunktSentenceTokenizer().tokenize(text)) <= rule["count"]
    if name == "sentence_count_at_least":
        return len(PunktSentenceTokenizer().tokenize(text)) >= rule["count"]
    if name == "all_upper_case":
        return text.isupper()
    if name == "all_lower_case":
        return text.islower()
    if name == "no_commas":
        return "," not in text
    if name == "keyword_inclusion":
        return rule["keywords"][i].lower() in set(low)
    if name == "keyword_frequency":
        w, n = rule["keywords"][i]
        return low.count(w.lower()) == n
    if name == "keyword_forbidden":
        return rule["keywords"][i].lower() not in set(low)
    if name == "bullet_count_frequency":
        return sum(1 for line in text.splitlines() if line.lstrip().startswith("*")) == rule["count"]
    if name == "ends_with":
        return text.lower().endswith(rule["phrase"].lower())
    if name == "quotation":
        return text.startswith('"') and text.endswith('"')
    raise ValueError(name)


def prompt_for(question, rules, i):
    lines = "\n".join(f"{k + 1}. {rule_line(r, i)}" for k, r in enumerate(rules))
    return (
        "Please answer the question below, denoted between quotes. Your response must follow these rules:\n"
        + lines + "\n\n\"" + question + "\"\n"
    )


def split_challenge(challenge, letter):
    import re
    if letter not in ("A", "B", "C", "D"):
        return None
    m = re.search(r"(.*)\s+A\. (.*)\s+B\. (.*)\s+C\. (.*)\s+D\. (.*)", challenge)
    if not m:
        return None
    return m.group(1), m.group("ABCD".index(letter) + 2)


def if_eval_samples(rows, seed, version, max_samples=20):
    lo, hi = {1: (1, 4), 2: (2, 5)}[version]
    qa = [x for x in (split_challenge(c, r) for c, r in rows) if x is not None]
    qa = [x for x in qa if len(x[1].split()) >= 2]
    rng = random.Random(seed)
    out = []
    for qa1, qa2 in zip(qa[: min(max_samples, len(qa) - 1)], qa[1:]):
        ids = set()
        ids |= V1
        if version >= 2:
            ids |= V2
        ids = list(ids)
        rng.shuffle(ids)
        n = rng.randint(lo, hi)
        rules = []
        for rid in ids:
            if len(rules) == n:
                break
            if any(rule_id(r) in CLASH.get(rid, set()) for r in rules):
                continue
            rules.append(make_rule(rid, rules, [qa1[1], qa2[1]], rng))
        out.append({"prompts": [prompt_for(qa1[0], rules, 0), prompt_for(qa2[0], rules, 1)], "rules": rules})
    return out


def if_eval_score(samples, responses):
    scores, dup = [], 0
    for smp, resp in zip(samples, responses):
        n = len(smp["rules"])
        if resp is None:
            scores += [1] * (2 * n)
            continue
        if difflib.SequenceMatcher(lambda x: x in " \t", resp[0], resp[1]).ratio() > 0.6:
            dup += 1
        for i, text in enumerate(resp):
            ok = sum(1 for r in smp["rules"] if follows(r, text, i))
            scores += [1 - (ok / n) ** 2] * n
    if dup > len(samples) * 0.1:
        return 1
    return sn37_sum(scores) / len(scores) if scores else 1


# ---- reasoning datasets (Synthetic1SFTLoader, CodeforcesCOTSLoader) ------------------------


def tokens_estimate(*parts):
    return sum(len(p) // 4 if p else 0 for p in parts) + 10


def synthetic_pairs(rows, max_len=None, target_size=None, kept=("verifiable_math", "code_output_prediction")):
    import re
    buffer = [r for r in rows if r.get("task_type", "unknown") in kept]
    questions, traces, answers, types = [], [], [], []
    for row in buffer:
        try:
            msgs = row.get("messages", "")
            q, a = msgs[0]["content"], msgs[1]["content"]
            tt = row.get("task_type", "unknown")
            if tt == "verifiable_math":
                found = re.findall(r"\\boxed\{(.*?)\}", a)
                ans = found[-1] if found else ""
                if found and ans:
                    at = a.rfind(f"\\boxed{{{ans}}}")
                    trace = a[:at].strip() if at > -1 else a
                else:
                    trace = a
            else:
                found = re.findall(r'{"output": "(.*?)"}', a)
                ans = found[-1] if found else ""
                trace = a.replace(f'{{"output": "{ans}"}}', "", 1) if found and ans else a
            if max_len is not None and tokens_estimate(q, trace, ans) > max_len:
                continue
            questions.append(q)
            traces.append(trace)
            answers.append(ans)
            types.append(tt)
            if target_size is not None and len(questions) >= target_size:
                break
        except Exception:
            continue
    out = []
    for q, t, a, tt in zip(questions, traces, answers, types):
        if tt == "verifiable_math":
            out.append([q, t.strip() + " \\boxed{" + a + "}"])
        else:
            out.append([q, t.strip() + ' {"output": "' + a + '"}'])
    return out


def codeforces_pairs(rows, max_len=16384):
    out = []
    for row in rows:
        try:
            msgs = row.get("messages", [])
            if len(msgs) != 2:
                continue
            q, t = msgs[0]["content"], msgs[1]["content"]
            if max_len is not None and tokens_estimate(q, t) > max_len:
                continue
            out.append([q, t.strip()])
        except Exception:
            continue
    return out


def gen_reasoning(rng):
    def msg(q, a):
        return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]

    synthetic = []
    for i in range(60):
        kind = rng.choice(["verifiable_math", "code_output_prediction", "code_generation", None])
        body = gen_sentence(rng, rng.randint(2, 40))
        if kind == "verifiable_math":
            a = rng.choice([
                f"<think>{body}</think> so \\boxed{{{i}}}",
                f"  {body} \\boxed{{1}} then \\boxed{{{i}}} ",
                f"{body} no box",
                f"{body} \\boxed{{}} empty",
            ])
        else:
            a = rng.choice([
                f'<think>{body}</think> {{"output": "{i}"}}',
                f'{{"output": "{i}"}} {body} {{"output": "{i}"}}',
                f"{body} no output",
            ])
        row = {"response_id": f"r{i}", "problem_id": f"p{i}", "score": 1, "messages": msg(gen_sentence(rng, 6), a)}
        if kind is not None:
            row["task_type"] = kind
        if rng.random() < 0.05:
            row["messages"] = row["messages"][:1]
        synthetic.append(row)
    codeforces = []
    for i in range(40):
        m = msg(gen_sentence(rng, rng.randint(3, 30)), "  " + gen_sentence(rng, rng.randint(0, 60)) + " \n")
        if rng.random() < 0.15:
            m.append({"role": "user", "content": "again"})
        codeforces.append({"id": f"cf{i}", "contest_type": "div2", "messages": m})
    return {
        "synthetic_rows": synthetic,
        "synthetic": [
            {"max_tokens": mx, "target_size": ts, "pairs": synthetic_pairs(synthetic, mx, ts)}
            for mx, ts in [(None, None), (None, 12), (40, None), (60, 20)]
        ],
        "codeforces_rows": codeforces,
        "codeforces": [{"max_tokens": mx, "pairs": codeforces_pairs(codeforces, mx)} for mx in [16384, 50, 70]],
    }


# ---- generated inputs ----------------------------------------------------------------------

NOUNS = ["river", "mountain", "engine", "library", "teacher", "planet", "garden", "market", "bridge", "signal",
         "protein", "theory", "painter", "harbor", "rocket", "island", "forest", "student", "algorithm", "kingdom"]
ADJS = ["quick", "ancient", "bright", "narrow", "gentle", "massive", "silent", "golden", "rapid", "hollow"]
VERBS = ["builds", "carries", "measures", "explains", "protects", "divides", "follows", "creates"]
SMALL = ["the", "a", "of", "in", "to", "is", "and", "it", "by", "on"]


def gen_words(rng, n):
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    while len(out) < n:
        w = "".join(rng.choice(letters) for _ in range(rng.randint(2, 9)))
        if w not in out:
            out.append(w)
    return out


def gen_sentence(rng, k):
    bag = NOUNS + ADJS + VERBS + SMALL + ["Paris", "Newton", "DNA", "1905", "e.g.", "well-known"]
    return " ".join(rng.choice(bag) for _ in range(k))


def gen_rows(rng, n):
    rows = []
    for _ in range(n):
        q = gen_sentence(rng, rng.randint(4, 12)).capitalize() + "?"
        opts = [gen_sentence(rng, rng.randint(1, 5)) for _ in range(4)]
        letter = rng.choice(["A", "B", "C", "D", "A", "E"])
        challenge = q + "\n" + "\n".join(f"{l}. {o}" for l, o in zip("ABCD", opts))
        if rng.random() < 0.1:
            challenge = q  # not a multiple-choice challenge: dropped
        rows.append([challenge, letter])
    return rows


def gen_response(rng, smp, i):
    kws = [k for r in smp["rules"] for k in ([r["keywords"][i][0]] if r["rule"] == "keyword_frequency" else ([r["keywords"][i]] if "keywords" in r else []))]
    parts = [gen_sentence(rng, rng.randint(3, 15)) + rng.choice([".", "!", "?", "", ". ..."]) for _ in range(rng.randint(1, 5))]
    if kws and rng.random() < 0.7:
        parts.insert(rng.randint(0, len(parts)), " ".join(rng.choice(kws) for _ in range(rng.randint(1, 3))))
    if rng.random() < 0.3:
        parts = ["* " + p for p in parts]
    text = ("\n" if rng.random() < 0.4 else " ").join(parts)
    r = rng.random()
    if r < 0.15:
        text = text.upper()
    elif r < 0.3:
        text = text.lower()
    if rng.random() < 0.2:
        text = text.replace(",", "")
    if rng.random() < 0.2:
        text = '"' + text + '"'
    if rng.random() < 0.2:
        text += " " + rng.choice(ENDINGS).lower()
    return text


def vectors():
    rng = random.Random(37)
    words = gen_words(rng, 850)
    out = {"nltk_version": nltk.__version__, "words": words, "word_sorting": [], "if_eval": []}
    for seed in [0, 7, 2**63 + 5]:
        out["word_sorting"].append({"seed": str(seed), "samples": word_sorting(words, seed, 25)})
    for seed, version in [(1, 2), (99, 2), (12345, 1), (2**64 - 1, 2), (42, 2)]:
        rows = gen_rows(rng, 40)
        samples = if_eval_samples(rows, seed, version)
        responses = []
        for smp in samples:
            r = rng.random()
            if r < 0.05:
                responses.append(None)
            elif r < 0.12:
                same = gen_response(rng, smp, 0)
                responses.append([same, same])
            else:
                responses.append([gen_response(rng, smp, 0), gen_response(rng, smp, 1)])
        out["if_eval"].append({
            "seed": str(seed), "version": version, "rows": rows, "samples": samples,
            "responses": responses, "score": if_eval_score(samples, responses),
        })
        # The bits too: a JSON float parser need not round correctly.
        out["if_eval"][-1]["score_bits"] = struct.unpack("<Q", struct.pack("<d", out["if_eval"][-1]["score"]))[0]
    out["reasoning"] = gen_reasoning(rng)
    return out


def main():
    text = json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n"
    if "--check" in sys.argv:
        if open(OUT, encoding="utf-8").read() != text:
            sys.exit(f"{OUT} differs from what this script produces; rerun it")
        return
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
