"""A small generated corpus for the pretraining demo, and the vocabulary that covers it.

The lines follow a few templates whose blanks are tied together by fixed facts (each animal has one
home, one food, one sound; numbers count up; sums are right; verbs agree with their subjects), so a
masked word can be predicted from its context: MLM accuracy rises well above chance as a small model
learns the facts. A few Chinese lines exercise the character-level path. Same seed, same corpus.
"""
import numpy as np

ANIMALS = {  # animal: (home, food, sound)
    "cat": ("house", "fish", "meow"), "dog": ("yard", "meat", "woof"), "cow": ("barn", "grass", "moo"),
    "duck": ("pond", "bread", "quack"), "owl": ("tree", "mice", "hoot"), "bee": ("hive", "nectar", "buzz"),
    "frog": ("lake", "flies", "croak"), "horse": ("field", "hay", "neigh"),
}
COLORS = ["red", "green", "blue", "brown", "white", "black"]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve"]
VERBS = ["jump", "walk", "play", "climb", "rest"]
CHINESE = {"猫": "鱼", "狗": "肉", "兔子": "萝卜", "猴子": "香蕉", "熊猫": "竹子"}
SUFFIXES = ["##s", "##ed", "##ing"]


def _line(rng):
    kind = rng.integers(7)
    animal = str(rng.choice(list(ANIMALS)))
    home, food, sound = ANIMALS[animal]
    color = str(rng.choice(COLORS))
    if kind == 0:
        return f"the {color} {animal} lives in the {home} and eats {food} ."
    if kind == 1:
        return f"the {animal}s live in the {home} , they eat {food} and say {sound} ."
    if kind == 2:
        a = int(rng.integers(0, len(NUMBERS) - 4))
        return "count " + " ".join(NUMBERS[a:a + 4]) + " ."
    if kind == 3:
        a, b = (int(x) for x in rng.integers(0, 7, size=2))
        return f"{NUMBERS[a]} plus {NUMBERS[b]} makes {NUMBERS[a + b]} ."
    if kind == 4:
        verb = str(rng.choice(VERBS))
        return f"yesterday the {animal} {verb}ed , today it {verb}s , now it is {verb}ing ."
    if kind == 5:
        return f"a {animal} says {sound} , and the {animal}s say {sound} too ."
    who = str(rng.choice(list(CHINESE)))
    return f"{who}喜欢吃{CHINESE[who]}。"


def demo_lines(n_lines=4000, seed=0):
    """n_lines generated lines of text (list of str)."""
    rng = np.random.default_rng(seed)
    return [_line(rng) for _ in range(n_lines)]


def demo_vocab():
    """Token list covering every demo line: special tokens, whole words, suffix pieces, characters."""
    words = {"the", "lives", "in", "and", "eats", "live", "they", "eat", "say", "says", "count", "plus",
             "makes", "yesterday", "today", "it", "now", "is", "a", "too", ",", ".", "。"}
    for animal, facts in ANIMALS.items():
        words.update((animal, *facts))
    words.update(COLORS + NUMBERS + VERBS)
    chars = sorted({c for w in list(CHINESE) + list(CHINESE.values()) for c in w} | set("喜欢吃"))
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words) + SUFFIXES + chars
