#!/usr/bin/env python3
"""Builds the tokenizer exactness test set under tests/fixtures/tokenizer/texts/.

Two kinds of text:
  * excerpts of the development corpus (../shared/data/corpus): Austen, Moby-Dick, State of the
    Union addresses (public domain) and three short Linux kernel documentation files (GPL-2,
    about 25 KB, credited in tests/fixtures/README.md);
  * hand-made edge cases, written below with explicit escapes so every odd code point and
    every invalid byte is visible in review.

The output is deterministic. Usage:
  python3 tools/make_tokenizer_texts.py [--corpus ../shared/data/corpus] [--out tests/fixtures/tokenizer/texts]
The reference ids for these texts are made by tools/make_tokenizer_refs.py (needs Hugging Face
`tokenizers`, so it runs on the GPU machine).
"""
import argparse
import gzip
import json
import os


def lines_slice(text, start_frac, nbytes):
    """About nbytes of text starting at start_frac of the file, cut at line boundaries (at
    sentence boundaries for the State of the Union files, which are one line each)."""
    sep = "\n" if text.count("\n") > 10 else ". "
    start = int(len(text) * start_frac)
    if start > 0:
        start = text.index(sep, start) + len(sep)
    end = min(len(text), start + nbytes)
    if end < len(text):
        end = text.index(sep, end) + len(sep)
    return text[start:end]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def corpus_texts(corpus):
    a = os.path.join(corpus, "austen")
    s = os.path.join(corpus, "sotu")
    out = {}
    out["austen_emma_start.txt"] = lines_slice(read(os.path.join(a, "emma.txt")), 0.0, 30000)
    out["austen_pride_middle.txt"] = lines_slice(
        read(os.path.join(a, "pride-and-prejudice.txt")), 0.5, 30000)
    out["austen_persuasion_end.txt"] = lines_slice(read(os.path.join(a, "persuasion.txt")), 0.97,
                                                   16000)
    mp = read(os.path.join(a, "mansfield-park.txt"))  # contains the only pound sign in Austen
    out["austen_mansfield_pound.txt"] = lines_slice(mp, (mp.index("£") - 5000) / len(mp), 10000)
    moby = read(os.path.join(corpus, "moby-dick.txt"))
    out["moby_dick_start.txt"] = lines_slice(moby, 0.0, 40000)
    out["moby_dick_middle.txt"] = lines_slice(moby, 0.6, 20000)
    out["sotu_1790_washington.txt"] = read(os.path.join(s, "1790_george_washington_n.txt"))
    out["sotu_1862_lincoln.txt"] = lines_slice(read(os.path.join(s, "1862_abraham_lincoln_r.txt")),
                                               0.3, 20000)
    out["sotu_1910_taft_numbers.txt"] = lines_slice(read(os.path.join(s, "1910_william_h_taft_r.txt")),
                                                    0.4, 20000)
    out["sotu_1932_hoover.txt"] = read(os.path.join(s, "1932_herbert_hoover_r.txt"))
    out["sotu_2021_biden.txt"] = lines_slice(read(os.path.join(s, "2021_joseph_r_biden_d.txt")), 0.2,
                                             20000)
    wanted = {"core-api/kref.rst", "hid/hid-sensor.rst", "PCI/sysfs-pci.rst"}
    with gzip.open(os.path.join(corpus, "linux-doc.jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["source"] in wanted:
                name = "linux_doc_" + d["source"].replace("/", "_").replace(".rst", ".txt")
                out[name] = d["text"]
    assert len([k for k in out if k.startswith("linux_doc_")]) == 3
    return out


WHITESPACE = (
    "one two  three   four    five     six      seven       eight        nine         ten\n"
    "a" + "".join(" " * n + str(n) for n in range(1, 33)) + "\n"
    "   leading three\n"
    "trailing three   \n"
    " \n  \n   \n\n\n\n"
    "tab\there\t\ttwo tabs\t \tmixed \t \t end\t\n"
    "\t\tindented with tabs\n"
    "        indented with eight spaces\n"
    "    def f(x):\n        return x  # two spaces before the comment\n"
    "windows\r\nline\r\nendings\r\n\r\n"
    "old mac\rline\rendings\r"
    "vertical\x0btab and form\x0cfeed\n"
    "file sep\x1cgroup\x1drecord\x1eunit\x1fseparators\n"
    "no-break\u00a0space and narrow\u202fno-break and figure\u2007space\n"
    "en\u2002em\u2003thin\u2009hair\u200a six-per-em\u2006 spaces\n"
    "ideographic\u3000space\u3000\u3000two\n"
    "next line\u0085control, line\u2028separator, paragraph\u2029separator\n"
    "ogham\u1680space, mongolian\u180evowel separator, medium\u205fmath space\n"
    "zero\u200bwidth space, word\u2060joiner, bom\ufeffinside\n"
    "space before newline \n"
    " \t \n"
    "double  space  between  words  and   triple   too\n"
    "a \u00a0 b \u3000 c\n"
    "trailing spaces at the end of the file   "
)

CONTRACTIONS = (
    "I'm sure you're right, we've seen it, they'll come, he'd go, it's here, she's gone.\n"
    "Don't, can't, won't, shouldn't, wouldn't've, y'all, o'clock, rock'n'roll.\n"
    "UPPER CASE: I'M SURE YOU'RE RIGHT, WE'VE SEEN IT, THEY'LL COME, HE'D GO, IT'S.\n"
    "Mixed: It'S, you'Re, we'Ve, they'Ll, he'D.\n"
    "'s 't 're 've 'm 'll 'd at the start of words, and 'tis 'twas.\n"
    "'sll 'dd 'mm 'lll 'ree 'vee\n"
    "Curly: I’m, you’re, it’s, don’t.\n"
    "Quotes: 'hello', \"world\", ''double single'', the '90s, rock 'n' roll.\n"
    "Space before: it 's, we 've, a ' s.\n"
    "Digits after: '1 '23 and letters '  s.\n"
    "'"
    "\n'\n''\n'''\n's\n"
)

DIGITS = (
    "0 1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890\n"
    "3.14159265358979 2.71828 -42 +17 1e10 6.022e23 1/2 3:45 12:00pm\n"
    "1,000,000 and 1.000.000 and 1 000 000 and 1_000_000\n"
    "2021-03-04T05:06:07Z, 04/05/2021, (555) 123-4567, +1-800-555-0199\n"
    "0xDEADBEEF 0b1010 0o777 v1.2.3 ipv4 192.168.0.1 port 8080\n"
    "x1 x12 abc123def 123abc a1b2c3 H2O CO2 mp3 4K 1080p 3D\n"
    "Arabic-Indic \u0660\u0661\u0662\u0663\u0664 Devanagari \u0967\u0968\u0969 Thai \u0e51\u0e52\u0e53\n"
    "fullwidth \uff11\uff12\uff13 superscript x\u00b2 y\u00b3 subscript H\u2082O\n"
    "fractions \u00bd \u00bc \u2153 roman \u2160\u2161\u2162 \u216b circled \u2460\u2461\u2462\n"
    "mathematical digits \U0001d7ce\U0001d7cf\U0001d7d0\n"
    "11111111111111111111111111111111111111111111111111\n"
    "\u00a31,200 $3.50 \u20ac100 \u00a5500 50% 99.9% #1 No.5\n"
)

UNICODE = (
    "precomposed \u00e9 \u00c5 \u00f1 \u00fc and decomposed e\u0301 A\u030a n\u0303 u\u0308\n"
    "caf\u00e9 vs cafe\u0301, na\u00efve vs nai\u0308ve, Z\u00fcrich vs Zu\u0308rich\n"
    "angstrom sign \u212b ohm sign \u2126 kelvin sign \u212a\n"
    "hangul jamo \u1100\u1161\u11a8 \u1112\u1161\u11ab \u1100\u1173\u11af and syllables \ud55c\uad6d\uc5b4\n"
    "reordering A\u0323\u0307 vs A\u0307\u0323, q\u0307\u0323 vs q\u0323\u0307\n"
    "greek dialytika tonos \u0344 and \u03b1\u0301 \u03b9\u0308\u0301 \u1f00\u0345\n"
    "long s with dot below \u1e9b\u0323 and \u017f\u0323\u0307\n"
    "compatibility ideograph \uf900\uf901 and CJK \u8c48\n"
    "devanagari qa \u0958 vs \u0915\u093c, and \u0929 vs \u0928\u093c\n"
    "ligatures stay: \ufb01ne \ufb02ow \u01c6 \u2163 \uff21\n"
    "vietnamese Ti\u1ebfng Vi\u1ec7t and Tie\u0302\u0301ng Vie\u0323\u0302t\n"
    "cyrillic \u0438\u0306 \u0439 \u0415\u0308 \u0401 \u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!\n"
    "greek \u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5\n"
    "hebrew \u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd arabic \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645\n"
    "devanagari \u0928\u092e\u0938\u094d\u0924\u0947 thai \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 georgian \u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0\n"
    "armenian \u0532\u0561\u0580\u0587 ethiopic \u1230\u120b\u121d tamil \u0bb5\u0ba3\u0b95\u0bcd\u0b95\u0bae\u0bcd\n"
    "combining after space \u0301 and alone \u0308\u0308 and after digit 1\u0301\n"
    "turkish \u0130stanbul \u0131 german Stra\u00dfe \u1e9e\n"
    "mathematical \U0001d400\U0001d401\U0001d402 gothic \U00010330\U00010331 cuneiform \U00012000\n"
    "CJK extension B \U00020000\U00020001 and tangut \U00017000\n"
    "private use \ue000\uf8ff and noncharacter \ufdd0 and replacement \ufffd\n"
    "control chars \x01\x02\x07\x1b[0m \x7f \u0080\u009f\n"
    "soft\u00adhyphen, zero\u200cwidth non-joiner, zero\u200dwidth joiner\n"
    "left-to-right\u200emark, right-to-left\u200fmark, \u202aembedding\u202c\n"
    "modifier letters \u02b0\u02b2 \u02c6 and spacing marks \u00a8\u00b4\u02d8\n"
    "lone surrogate-free text ends here: \u00e9\u0301\u0327 stacked marks\n"
)

EMOJI = (
    "smile \U0001f600 thumbs \U0001f44d skin \U0001f44d\U0001f3fd family "
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466\n"
    "flags \U0001f1fa\U0001f1f8 \U0001f1ef\U0001f1f5 \U0001f1e9\U0001f1ea heart \u2764\ufe0f keycap 1\ufe0f\u20e3\n"
    "newer emoji \U0001fae0 \U0001faf6 \U0001fae8 \U0001fa77 rainbow flag \U0001f3f3\ufe0f\u200d\U0001f308\n"
    "emoji\U0001f600glued\U0001f600to\U0001f600words and 123\U0001f600456\n"
    "\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\n"
    " \U0001f680 rocket with leading space, \U0001f4a9 and \u2603 snowman, \u2615 coffee\n"
    "symbols \u00a9 \u00ae \u2122 \u2190\u2192\u2191\u2193 \u2200\u2203\u2208\u2211\u221e \u266a\u266b \u2605\u2606\n"
    "music \U0001d11e dominoes \U0001f030 mahjong \U0001f004 playing cards \U0001f0a1\n"
    "box drawing \u250c\u2500\u2500\u2510\n\u2502  \u2502\n\u2514\u2500\u2500\u2518\n"
    "kaomoji (\u256f\u00b0\u25a1\u00b0)\u256f\ufe35 \u253b\u2501\u253b  \u00af\\_(\u30c4)_/\u00af\n"
)

CJK = (
    "\u4e2d\u6587\u6587\u672c\uff1a\u8fd9\u662f\u4e00\u4e2a\u6d4b\u8bd5\u3002\u6211\u4eec\u7684\u8bed\u8a00\u6a21\u578b\u9700\u8981\u5904\u7406\u6c49\u5b57\u3002\n"
    "\u7e41\u9ad4\u4e2d\u6587\uff1a\u9019\u662f\u4e00\u500b\u6e2c\u8a66\uff0c\u5305\u542b\u6a19\u9ede\u7b26\u865f\u3002\n"
    "\u65e5\u672c\u8a9e\uff1a\u3053\u308c\u306f\u30c6\u30b9\u30c8\u3067\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3068\u6f22\u5b57\u3002\n"
    "\u534a\u89d2\u30ab\u30bf\u30ab\u30ca\uff1a\uff76\uff80\uff76\uff85 \uff8a\uff9f\uff9d and voiced \u30ab\u3099 \u304b\u3099\n"
    "\ud55c\uad6d\uc5b4: \uc548\ub155\ud558\uc138\uc694, \uc138\uacc4! \ud14c\uc2a4\ud2b8\uc785\ub2c8\ub2e4.\n"
    "\u300c\u5f15\u7528\u300d\u300e\u4e8c\u91cd\u5f15\u7528\u300f\uff08\u62ec\u5f27\uff09\u3010\u898b\u51fa\u3011\u3001\u3002\uff01\uff1f\n"
    "numbers \u4e00\u4e8c\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d\u5341 \u3007 \u58f1\u5f10 and iteration \u3005 \u309d\u309e \u30fd\n"
    "mixed English\u548c\u4e2d\u6587mixed\u3068\u65e5\u672c\u8a9e and 2021\u5e743\u67084\u65e5\n"
    "\u4e2d \u6587 \u6709 \u7a7a \u683c  \u4e24\u4e2a\u7a7a\u683c\n"
    "fullwidth latin \uff28\uff45\uff4c\uff4c\uff4f\uff0c\u3000\uff37\uff4f\uff52\uff4c\uff44\uff01\n"
)

ENDOFTEXT = (
    "<|endoftext|>\n"
    "hello<|endoftext|>world\n"
    "hello <|endoftext|> world\n"
    "hello  <|endoftext|>  world\n"
    "<|endoftext|><|endoftext|><|endoftext|>\n"
    "end of one document.<|endoftext|>Start of the next.\n"
    "<|endoftext\n"
    "<|endoftext|>>\n"
    "<<|endoftext|>\n"
    "<|<|endoftext|>|>\n"
    "<|ENDOFTEXT|> <|EndOfText|> <| endoftext |> <endoftext>\n"
    "<|padding|> and <|padding|><|endoftext|> and x<|padding|>y\n"
    "\t<|endoftext|>\t\n"
    "caf\u00e9<|endoftext|>cafe\u0301<|endoftext|>e\u0301\n"
    "\U0001f600<|endoftext|>\U0001f600\n"
    "text ending with the token<|endoftext|>"
)

CODE = (
    "#include <stdio.h>\n\nint main(int argc, char **argv) {\n"
    "\tfor (int i = 0; i < argc; ++i) {\n\t\tprintf(\"%d: %s\\n\", i, argv[i]);\n\t}\n"
    "\treturn 0;\n}\n\n"
    "def fibonacci(n: int) -> list[int]:\n"
    "    \"\"\"Return the first n Fibonacci numbers.\"\"\"\n"
    "    a, b = 0, 1\n    out = []\n    for _ in range(n):\n        out.append(a)\n"
    "        a, b = b, a + b\n    return out\n\n"
    "{\"key\": \"value\", \"list\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}\n"
    "https://example.com/path/to/page?query=1&other=two#fragment\n"
    "mailto:someone@example.org, user.name+tag@sub.domain.co.uk\n"
    "C:\\Users\\name\\Documents\\file.txt and /usr/local/bin/serpent\n"
    "| col a | col b |\n|-------|-------|\n| 1     | 2     |\n"
    "==============================================================\n"
    "--------------------------------------------------------------\n"
    "<html><body class=\"main\"><p>Hello, &amp; welcome!</p></body></html>\n"
    "regex: ^[a-z]+(?:\\d{2,3})?$ and s/foo/bar/g and $HOME ${PATH} $(pwd)\n"
    "x+=1; y-=2; z*=3; a<<=b; c>>=d; e!==f; g&&h||i; j??k; l->m; n=>o; p::q\n"
    "    \n\t\n"
)

LONG = (
    "a" * 500 + "\n" + "=" * 300 + "\n" + "1234567890" * 50 + "\n" + "ab" * 200 + "\n"
    "Donaudampfschifffahrtselektrizit\u00e4tenhauptbetriebswerkbauunterbeamtengesellschaft\n"
    "https://example.com/" + "very-long-path-segment/" * 10 + "index.html?" + "&".join(
        "k%d=v%d" % (i, i) for i in range(20)) + "\n"
    "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkrLw==\n"
    + "\U0001f600" * 100 + "\n" + "\u4e2d" * 200 + "\n" + " " * 100 + "x\n" + "\t" * 50 + "y\n"
    + "\n" * 40 + "." * 200 + "\n" + "!?" * 100 + "\n" + "e\u0301" * 100 + "\n"
    + "supercalifragilisticexpialidocious " * 20 + "\n"
)

PUNCT = (
    "Wait... what?! Really?!? No\u2014never\u2013ever -- okay - fine.\n"
    "\u00abguillemets\u00bb \u201eGerman\u201c \u201cEnglish\u201d \u2018single\u2019 \u00bfQu\u00e9? \u00a1S\u00ed!\n"
    "ellipsis\u2026 bullet \u2022 dagger \u2020\u2021 section \u00a7 pilcrow \u00b6 degree 30\u00b0C\n"
    "(parentheses) [brackets] {braces} <angles> \"quotes\" 'apostrophes' `backticks`\n"
    "!@#$%^&*()_+-=[]{}|;':\",./<>?~`\n"
    "a.b,c;d:e!f?g\n"
    "end of sentence.  Two spaces after.  Like typewriters.\n"
    "--flag=value -v -- --\n"
    "***bold*** __under__ ~~strike~~\n"
)

# Characters assigned after Unicode 14.0 (the version of Python 3.11's unicodedata), placed so
# that whether a regex engine calls them letters or numbers changes the split, and a canonical
# composition added in Unicode 13.0 (Dives Akuru): these pin down which Unicode versions Hugging
# Face's pre-tokenizer and normalizer use.
UNICODE_VERSIONS = (
    "15.0 Kawi ab\U00011f04cd ab \U00011f04\U00011f05 digits 1\U00011f50\U00011f512 x\U00011f50y\n"
    "15.0 Nag Mundari ab\U0001e4d0cd \U0001e4d0\U0001e4d1 digits 1\U0001e4f02 x\U0001e4f0y\n"
    "15.0 Cyrillic modifier ab\U0001e030cd, Latin ab\U0001df25cd, CJK H ab\U00031350cd, Kaktovik 1\U0001d2c02\n"
    "15.1 CJK I ab\U0002ebf0cd \U0002ebf0\U0002ebf1\n"
    "16.0 Todhri ab\U000105c0cd, Sunuwar ab\U00011bc0cd, Kirat Rai ab\U00016d40cd, Egyptian ab\U00013460cd\n"
    "16.0 Garay ab\U00010d4acd, outlined digits 1\U0001ccf02 x\U0001ccf0y\n"
    "13.0 Dives Akuru composition \U00011935\U00011930 and precomposed \U00011938\n"
)

# Invalid UTF-8: every class of ill-formed sequence between valid text. The reference script
# decodes bytes with errors="replace" (one U+FFFD per maximal ill-formed subsequence), which is
# the behaviour Serpent documents in docs/DATA.md.
INVALID = b"".join([
    b"valid ascii then lone continuation \x80 and \xbf\xbf here\n",
    b"lone lead byte \xc3 before ascii, and \xc3\xa9 valid\n",
    b"truncated three-byte \xe2\x82 then text, truncated four-byte \xf0\x9f\x98 then text\n",
    b"overlong slash \xc0\xaf and \xe0\x80\xaf and \xf0\x80\x80\xaf and overlong nul \xc0\x80\n",
    b"surrogates \xed\xa0\x80 \xed\xbf\xbf and a valid \xed\x9f\xbf\n",
    b"beyond U+10FFFF \xf4\x90\x80\x80 and bytes \xf5 \xf8\x88\x80\x80\x80 \xfc \xfe \xff\n",
    b"latin-1 text: caf\xe9 na\xefve \xa3100\n",
    b"mixed \xe2\x82\xac euro valid, \xe2\x82 broken \xe2\x28\xa1 broken\n",
    b"emoji broken in the middle \xf0\x9f\x98\x80 ok \xf0\x9f ko \xf0\x9f\x98\x80\n",
    b"<|endoftext|>\xff<|endoftext|>\n",
    b"ends with a truncated sequence \xe2\x82",
])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(here, "..", "..", "shared", "data", "corpus"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "tokenizer", "texts"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    texts = corpus_texts(args.corpus)
    texts.update({
        "edge_whitespace.txt": WHITESPACE,
        "edge_contractions.txt": CONTRACTIONS,
        "edge_digits.txt": DIGITS,
        "edge_unicode.txt": UNICODE,
        "edge_emoji.txt": EMOJI,
        "edge_cjk.txt": CJK,
        "edge_endoftext.txt": ENDOFTEXT,
        "edge_code.txt": CODE,
        "edge_long.txt": LONG,
        "edge_punct.txt": PUNCT,
        "edge_empty.txt": "",
        "edge_bom.txt": "\ufeffA file that starts with a byte order mark.\n",
        "edge_unicode_versions.txt": UNICODE_VERSIONS,
    })
    total = 0
    for name, text in sorted(texts.items()):
        data = text.encode("utf-8")
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
        total += len(data)
    with open(os.path.join(args.out, "edge_invalid_utf8.bin"), "wb") as f:
        f.write(INVALID)
    total += len(INVALID)
    print("wrote %d files, %d bytes, to %s" % (len(texts) + 1, total, args.out))


if __name__ == "__main__":
    main()
