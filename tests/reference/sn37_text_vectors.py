#!/usr/bin/env python3
"""Vectors for plugins/perplexity/src/ifeval/{punkt,difflib}.rs, the two Python text
behaviours SN37's IF-eval scoring relies on:

* sentence counts from NLTK's untrained Punkt tokenizer,
  len(nltk.tokenize.punkt.PunktSentenceTokenizer().tokenize(text));
* difflib.SequenceMatcher(lambda x: x in " \\t", a, b).ratio(), with the default
  autojunk=True (so strings b of 200+ code points drop their popular elements).

The corpus imitates LLM responses: several sentences, ?/!/. endings, ellipses, numbers,
initials, abbreviations, closing quotes and brackets, bullets, newlines, tabs, runs of
spaces, empty and blank strings, non-ASCII text, lowercase starts, missing final
punctuation. Half of it is hand-written, the rest drawn from a seeded random.Random.

Needs nltk (pip install nltk). Writes tests/golden/sn37_text.json; `--check` recomputes
and fails if the committed file differs."""

import difflib
import json
import os
import random
import struct
import sys

import nltk
from nltk.tokenize.punkt import PunktSentenceTokenizer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "sn37_text.json")

HAND_SENTENCES = [
    "",
    " ",
    "   \n\t  \n",
    "\n\n",
    "Hello",
    "Hello.",
    "Hello world",
    "hello world.",
    "Hello world. How are you? I am fine!",
    "Hello world.How are you?",
    "First sentence.  Second sentence.   Third sentence.",
    "First sentence.\nSecond sentence.\n\nThird sentence.",
    "First sentence.\tSecond sentence.",
    "Wait... what? Really!",
    "Wait...what happened",
    "Wait ... What happened?",
    "He paused. . . Then he spoke.",
    "The answer is 3.5. That is final.",
    "The answer is 3.5 percent.",
    "Step 1. Do this. Step 2. Do that.",
    "Step 1. do this.",
    "Version 2.0. It works.",
    "There are 1,000. More to come.",
    "It costs $3.50. Cheap!",
    "In 1999. the world changed.",
    "J. K. Rowling wrote Harry Potter. It sold well.",
    "J.K. Rowling wrote it.",
    "The author is J. R. R. Tolkien. He wrote books.",
    "I met A. Einstein yesterday.",
    "Plan a. then plan b.",
    "Option A. Option B. Option C.",
    "See section a. it explains.",
    "Use tools, e.g. hammers and saws. They help.",
    "Use tools, e.g. Hammers and saws.",
    "Dr. Smith is here. Mr. Jones left.",
    "I live in the U.S. It is big.",
    "I live in the U.S. and it is big.",
    "The U.S.A. is large. Canada too.",
    "Etc. etc. and so on.",
    "He said \"Hello.\" Then he left.",
    "He said \"Hello.\"Then he left.",
    "(This is a note.) This is text.",
    "(This is a note.)This is text.",
    "[Done.] Next.",
    "{Braces.} Next.",
    "She said 'yes.' He said 'no.'",
    "She said \u201cyes.\u201d He said \u201cno.\u201d",
    "She said \u2018yes.\u2019 He said \u2018no.\u2019",
    "Il a dit \u00abOui.\u00bb Puis il est parti.",
    "\u00abOui.\u00bb \u00abNon.\u00bb",
    "\"Is it?\" she asked. \"Yes!\" he said.",
    "Really?!  Yes!!!  OK.",
    "What?? No!! Fine.",
    "Very bad acting!!! I promise.",
    "Is this it?No it is not.",
    "* First item.\n* Second item.\n* Third item.",
    "* item one\n* item two\n* item three",
    "- Item one.\n- Item two.",
    "1. First point.\n2. Second point.\n3. Third point.",
    "1. first point\n2. second point",
    "Here is a list:\n\n1. Apples.\n2. Oranges.\n\nThat is all.",
    "Title\n\nParagraph one is here. Paragraph two follows.",
    "Caf\u00e9 is open. \u00dcber cool!",
    "\u00e9t\u00e9 est chaud. \u00e9t\u00e9 finit.",
    "\u00c9t\u00e9 est chaud. \u00c9t\u00e9 finit.",
    "\u4f60\u597d\u3002\u6211\u5f88\u597d\u3002",
    "\u4f60\u597d. \u6211\u5f88\u597d.",
    "I love pizza \U0001f355. It is great \U0001f600!",
    "Done \u2705. Next \u27a1\ufe0f step.",
    "\U0001f600. \U0001f600.",
    "lowercase start. another lowercase sentence.",
    "Ends without punctuation",
    "Two sentences. the second lowercase",
    "Trailing spaces.   ",
    "   Leading spaces. Here.",
    "Multiple   spaces   inside.  Yes.",
    "Windows line.\r\nNext line.\r\n",
    "Tab\tseparated.\tWords.",
    "A sentence -- with dashes. Another.",
    "A sentence.-- Another.",
    "Quote.\"-- Another.",
    "Email me at john.doe@example.com. Thanks.",
    "Visit www.example.com. It is great.",
    "The file is test.py. Run it.",
    "Pi is approx. 3.14159. Nice.",
    "Temperature was -5. Cold.",
    "Scores: 10. 20. 30.",
    "He scored 10. he was happy.",
    "He scored 10. He was happy.",
    "x. y. z.",
    "X. Y. Z.",
    "a.b.c. Next.",
    "Hello.World.",
    ". . .",
    "...",
    "....",
    "Hmm.... OK.",
    "?",
    "!",
    ".",
    "? ! .",
    "Why? Because.",
    "End.)",
    "End.) Start.",
    "End.)) Start.",
    "End.\") Start.",
    "End.' Start.",
    "End. ) Start.",
    "Okay.\n\n\nNew paragraph.",
    "Line one\nLine two\nLine three.",
    "Sentence one.\n   \nSentence two.",
    "Numbers 1.5, 2.5, and 3.5. Done.",
    "Is 2. bigger than 1.? Yes.",
    "The year 2023. It was good.",
    "See p. 5. It is there.",
    "Mix of A. lower and B. Upper.",
    "Initial \u00c9. Then text.",
    "Initial \u00e9. then text.",
    "Initial 5. Then text.",
    "Initial _. Then text.",
    "Ends with colon:",
    "Semi; colon. Next.",
    "Wow.; Next.",
    "Wow., Next.",
    "Wow.: Next.",
    "It is a.k.a. the thing. Yes.",
    "Ph.D. students study. A lot.",
    "No.1 is best. No. 2 is next.",
    "This is sentence one.This is sentence two.This is three.",
    "Sentence one.  \n  Sentence two.",
    "\u00bfQu\u00e9 tal? Bien.",
    "\u00a1Hola! \u00bfC\u00f3mo est\u00e1s?",
    "Stra\u00dfe ist lang. \u00d6l ist teuer.",
    "\u041f\u0440\u0438\u0432\u0435\u0442. \u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
    "\u03a4\u03bf \u03ba\u03b5\u03af\u03bc\u03b5\u03bd\u03bf. \u0391\u03c5\u03c4\u03cc.",
    "\u05e9\u05dc\u05d5\u05dd. \u05de\u05d4 \u05e9\u05dc\u05d5\u05de\u05da?",
    "\u0645\u0631\u062d\u0628\u0627. \u0643\u064a\u0641 \u062d\u0627\u0644\u0643\u061f",
    "\u3053\u3093\u306b\u3061\u306f\u3002 \u5143\u6c17\u3067\u3059\u304b\uff1f",
    "Non-breaking.\u00a0Space here.",
    "Em space.\u2003Here.",
    "Ideographic.\u3000Space.",
    "Unit sep.\x1fHere.",
    "File sep.\x1c Here.",
    "Trailing unit sep.\x1f",
    "Vertical tab.\x0bHere.",
    "Form feed.\x0cHere.",
    "Next line.\x85Here.",
    "Zero width.\u200bHere.",
    "Narrow.\u202fHere.",
    "Titlecase \u01c5. Next.",
    "Before \u01c5ebra. \u01c5ebra.",
    "He said: \"Go.\" She went.",
    "He said (quietly). Then left.",
    "Is it (really)? Yes.",
    "Stars *bold*. Next *thing*.",
    "Code `x = 1`. Then `y`.",
    "At @user. Hi.",
    "Hash #tag. Next.",
    "And & more. Next.",
    "Comma, at end, of words. Next,",
    "Weird ,start. Next.",
    "Dots..in..middle. Next.",
    "A .period at start. Next.",
    "Ellipsis\u2026 Next sentence.",
    "Ellipsis\u2026. Next sentence.",
    "Fullwidth\uff0e Next.",
    "The value is 0.5.Next sentence.",
    "1.\n2.\n3.",
    "1.",
    "1. 2. 3.",
    "-1. Yes.",
    ",5. Yes.",
    "3.5.6. Yes.",
    "1,2,3. go.",
    "A.\nB.",
    "a.\nb.",
    "Q. What? A. Nothing.",
    "Mr. Smith. Mrs. Smith.",
    "He asked, 'Why?' I said, 'Because.'",
    "'Quoted start.' Next.",
    "\"Start with quote. And more.\" End.",
    "A\nB\nC",
    "OK.\"\nNext.",
    "OK.)\n\nNext.",
    "OK.\"  \t Next.",
    "Sentence one. Sentence two. Sentence three. Sentence four. Sentence five.",
]

WORDS = [
    "the", "model", "answer", "is", "simple", "we", "can", "see", "that", "this",
    "works", "Python", "data", "results", "I", "think", "it", "should", "be", "fine",
    "however", "In", "summary", "First", "Second", "Finally", "Note", "example",
    "caf\u00e9", "\u00fcber", "na\u00efve", "\u00c9cole", "Z\u00fcrich", "\u4e2d\u6587",
    "\u6570\u636e", "\u0434\u0430", "\u00e9t\u00e9", "r\u00e9sum\u00e9", "\U0001f600",
    "\U0001f680", "\u2705", "3.5", "42", "1,000", "2.0", "100%", "$5", "x", "A", "b",
    "well-known", "state-of-the-art", "e.g.", "i.e.", "Dr.", "Mr.", "U.S.", "etc.",
    "vs.", "approx.", "J.", "K.", "Rowling", "a.m.", "No.", "p.", "(see", "below)",
    "\"quoted\"", "'single'", "[1]", "{x}", "--", "...", "A.I.", "it's", "don't",
]

ENDS = [
    ".", ".", ".", ".", "?", "!", "...", ".\"", ".)", "?\"", "!)", "", "", ".'",
    ".\u201d", "?\u00bb", ".]", "!!", "?!", ". . .", "\u2026", ".\")", "\u3002", ":",
]

SEPS = [" ", " ", " ", "  ", "\n", "\n\n", "\t", " \n", "", "   ", "\n \n", "\r\n"]

PREFIXES = ["", "", "", "", "* ", "- ", "1. ", "2. ", "(", "\"", "\u00ab", "a) "]


def random_sentence(r):
    n = r.randint(1, 9)
    words = [r.choice(WORDS) for _ in range(n)]
    if r.random() < 0.6:
        words[0] = words[0][:1].upper() + words[0][1:]
    return r.choice(PREFIXES) + " ".join(words) + r.choice(ENDS)


def random_text(r):
    k = r.randint(0, 7)
    out = ""
    for i in range(k):
        out += random_sentence(r)
        if i + 1 < k or r.random() < 0.2:
            out += r.choice(SEPS)
    return out


def sentence_cases():
    tok = PunktSentenceTokenizer()
    r = random.Random(37)
    texts = list(HAND_SENTENCES)
    texts += [random_text(r) for _ in range(320)]
    return [{"text": t, "count": len(tok.tokenize(t))} for t in texts]


HAND_PAIRS = [
    ("", ""),
    ("abc", ""),
    ("", "abc"),
    ("abc", "abc"),
    ("abcd", "bcde"),
    ("hello world", "hello  world"),
    ("hello world", "hello\tworld"),
    ("hello world", "helloworld"),
    ("   ", ""),
    ("   ", "\t\t"),
    (" ", " "),
    ("a b c", "a  b  c"),
    ("The quick brown fox.", "The quick brown fox!"),
    ("The quick brown fox.", "the quick brown fox."),
    ("private Thread currentThread;", "private volatile Thread currentThread;"),
    ("qabxcd", "abycdf"),
    ("caf\u00e9 \u00fcber", "cafe uber"),
    ("\u4f60\u597d\u4e16\u754c", "\u4f60\u597d\u4e16\u754c\uff01"),
    ("\U0001f600\U0001f600", "\U0001f600"),
    ("abababab", "babababa"),
    ("aaaaaaaa", "aaaa"),
    (" a", "a "),
    ("\ta\t", " a "),
    ("a\nb", "a b"),
]


def mutate(r, s):
    chars = list(s)
    for _ in range(r.randint(0, max(1, len(chars) // 10))):
        op = r.randrange(5)
        pos = r.randrange(len(chars) + 1)
        if op == 0 and chars and pos < len(chars):
            del chars[pos]
        elif op == 1:
            chars.insert(pos, r.choice(" \t"))
        elif op == 2 and chars and pos < len(chars):
            chars[pos] = r.choice("abcxyz \u00e9\u4e2d")
        elif op == 3:
            chars.insert(pos, r.choice(["the ", ". ", "\n", "  ", "\U0001f600"]))
        elif op == 4 and chars and pos < len(chars):
            chars[pos] = chars[pos].upper()
    return "".join(chars)


def long_text(r, lo, hi):
    target = r.randint(lo, hi)
    out = ""
    while len(out) < target:
        out += random_sentence(r) + " "
    return out[:target]


def similarity_pairs():
    r = random.Random(3737)
    pairs = list(HAND_PAIRS)
    for _ in range(40):  # short responses and edits of them
        a = random_text(r)
        pairs.append((a, mutate(r, a)))
    for _ in range(20):  # unrelated short responses
        pairs.append((random_text(r), random_text(r)))
    for _ in range(10):  # identical
        a = random_text(r)
        pairs.append((a, a))
    for _ in range(10):  # whitespace-only differences
        a = random_text(r)
        b = "".join(c + (r.choice(["", " ", "\t", "  "]) if c == " " else "") for c in a)
        pairs.append((a, b))
    for _ in range(40):  # long responses (autojunk applies to b of 200+)
        a = long_text(r, 200, 1500)
        pairs.append((a, mutate(r, a)))
    for _ in range(15):  # long, unrelated
        pairs.append((long_text(r, 150, 1200), long_text(r, 150, 1200)))
    for _ in range(15):  # long against short, both orders
        a, b = long_text(r, 200, 800), random_text(r)
        pairs.append((a, b) if r.random() < 0.5 else (b, a))
    units = ["ab", "abc ", "la ", "\u4e2d\u6587", "\U0001f600 ", "a", " x", "the cat sat. "]
    for _ in range(20):  # repetitive
        u, v = r.choice(units), r.choice(units)
        a = u * r.randint(1, 400)
        b = (v * r.randint(1, 400))[: r.randint(0, 1500)]
        pairs.append((a, b) if r.random() < 0.5 else (b, mutate(r, a)))
    for _ in range(15):  # lengths around the autojunk threshold
        n = r.choice([198, 199, 200, 201, 250, 299, 300, 301])
        a = long_text(r, n, n)
        pairs.append((a, a[::-1] if r.random() < 0.3 else mutate(r, a)))
    out = []
    for a, b in pairs:
        x = difflib.SequenceMatcher(lambda c: c in " \t", a, b).ratio()
        bits = struct.unpack(">Q", struct.pack(">d", x))[0]
        out.append({"a": a, "b": b, "ratio": x, "ratio_bits": format(bits, "016x")})
    return out


def vectors():
    return {
        "nltk_version": nltk.__version__,
        "sentences": sentence_cases(),
        "similarity": similarity_pairs(),
    }


def main():
    text = json.dumps(vectors(), indent=1) + "\n"
    if "--check" in sys.argv:
        if open(OUT).read() != text:
            sys.exit(f"{OUT} differs from what this script produces; rerun it")
        return
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
