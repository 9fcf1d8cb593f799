"""Instructions as token ids, in one fixed vocabulary for every language-directed world
(BabyAI's levels, the 3D MiniWorld rooms): a model that reads one reads the others.

The vocabulary (``VOCABULARY``; id = position, 0 is padding) covers every word of every
BabyAI level's missions (GoTo, Open, Pickup, PutNext, their sequences with "and", ", then"
and "after you", and the locations "in front of you", "behind you", "on your left/right")::

    0 <pad>   1 go      2 to      3 the     4 a
    5 red     6 green   7 blue    8 purple  9 yellow  10 grey
    11 box    12 ball   13 key    14 door   15 object
    16 pick   17 up     18 open   19 put    20 next
    21 in     22 front  23 of     24 you    25 behind 26 on    27 your   28 left   29 right
    30 and    31 then   32 after  33 ,

An instruction is lower-cased, its commas become tokens of their own, and it is split on
white space; a word outside the vocabulary, or an instruction longer than the length
asked for, is a ``ValueError`` that names it.
"""

from __future__ import annotations

import numpy as np

PAD = "<pad>"
VOCABULARY: tuple[str, ...] = (
    PAD,
    # go to the / a
    "go",
    "to",
    "the",
    "a",
    # colours, in minigrid's COLOR_TO_IDX order
    "red",
    "green",
    "blue",
    "purple",
    "yellow",
    "grey",
    # object types ("object": a description without a type)
    "box",
    "ball",
    "key",
    "door",
    "object",
    # the other verbs: pick up, open, put ... next to
    "pick",
    "up",
    "open",
    "put",
    "next",
    # locations: in front of you, behind you, on your left / right
    "in",
    "front",
    "of",
    "you",
    "behind",
    "on",
    "your",
    "left",
    "right",
    # sequences: "X and Y", "X, then Y", "X after you Y"
    "and",
    "then",
    "after",
    ",",
)
WORD_IDS: dict[str, int] = {word: index for index, word in enumerate(VOCABULARY)}
DEFAULT_INSTRUCTION_LENGTH = 16


def tokenize(mission: str, length: int = DEFAULT_INSTRUCTION_LENGTH) -> np.ndarray:
    """A mission as ``length`` int64 token ids of ``VOCABULARY``, padded with 0.

    >>> tokenize("go to the red ball", 6).tolist()
    [1, 2, 3, 5, 12, 0]
    """
    words = mission.lower().replace(",", " , ").split()
    unknown = [word for word in words if word not in WORD_IDS]
    if unknown:
        raise ValueError(f"mission {mission!r} has words outside the BabyAI vocabulary: {unknown}")
    if len(words) > length:
        raise ValueError(
            f"mission {mission!r} has {len(words)} tokens, more than instruction_length={length}"
        )
    ids = np.zeros(length, dtype=np.int64)
    ids[: len(words)] = [WORD_IDS[word] for word in words]
    return ids


def detokenize(ids: np.ndarray) -> str:
    """Token ids back to words, padding dropped (for people and tests)."""
    return " ".join(VOCABULARY[int(i)] for i in ids if int(i) != 0).replace(" ,", ",")
