#!/usr/bin/env python3
"""Derives wordnet.bin, the part of WordNet 3.0 that nltk's METEOR synonym stage reads, from
Debian's `wordnet-base` package. The output is committed; a build needs nothing installed.

    apt-get install -y wordnet-base          # WordNet 3.0 in /usr/share/wordnet
    python3 grader-sdk/wordnet/derive.py     # rewrites grader-sdk/wordnet/wordnet.bin

What METEOR needs, and so what is kept (nltk 3.10.4, `_enum_wordnetsyn_match`):
`wordnet.synsets(word)` for the four parts of speech (nltk's `_morphy`: exception lists, then
one round of suffix rules, filtered by the index), and for each synset the names of its lemmas
that contain no `_`. A lemma name with an upper-case letter can never equal a METEOR token
(tokens are lower-cased before matching), so those are dropped too. Glosses, pointers and
everything else are not kept.

Layout (all integers little-endian u32 unless said otherwise; `varint` is LEB128):

    magic  b"WNB1"
    n_lemmas, n_synsets, n_exceptions
    lemma_off[n_lemmas + 1]          byte offsets into lemma_blob
    synset_off[n_synsets + 1]        byte offsets into synset_blob
    exc_off[n_exceptions + 1]        byte offsets into exc_blob
    lemma_blob    per lemma, sorted by UTF-8 bytes: name, 0x00, one byte with bit p set
                  for each part of speech p (0 n, 1 v, 2 a, 3 r) the lemma is indexed
                  under, then per set bit: varint count, count varint synset ids
    synset_blob   per synset: varint lemma ids of its kept lemma names
    exc_blob      per exception, sorted by UTF-8 bytes of the key: key = pos letter +
                  inflected form, 0x00, base forms separated by 0x00

Lookups are binary searches over the offset tables, so nothing is parsed when a component
instance starts.
"""

import os
import re
import struct
import sys

POS = [("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")]
MARKER = re.compile(r"(.*?)(\([^()]*\))?$")


def varint(n, out):
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def read_index(root):
    """{lemma: {pos_bit: [offset, ...]}} as nltk's `_lemma_pos_offset_map` (without ADJ_SAT)."""
    index = {}
    for bit, (_, suffix) in enumerate(POS):
        with open(os.path.join(root, "index." + suffix), encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                tokens = line.split()
                lemma, n_synsets, n_pointers = tokens[0], int(tokens[2]), int(tokens[3])
                rest = tokens[4 + n_pointers:]
                assert int(rest[0]) == n_synsets, line
                offsets = [int(t) for t in rest[2:2 + n_synsets]]
                index.setdefault(lemma, {})[bit] = offsets
    return index


def read_synsets(root, wanted):
    """{(pos_bit, offset): [kept lemma name, ...]} for the synsets the index names."""
    names = {}
    for bit, (_, suffix) in enumerate(POS):
        with open(os.path.join(root, "data." + suffix), "rb") as f:
            for offset in sorted(o for b, o in wanted if b == bit):
                f.seek(offset)
                tokens = f.readline().decode("utf-8").split()
                assert int(tokens[0]) == offset, (suffix, offset)
                count = int(tokens[3], 16)
                kept = []
                for k in range(count):
                    name = MARKER.match(tokens[4 + 2 * k]).group(1)
                    if "_" in name or name != name.lower():
                        continue
                    if name not in kept:
                        kept.append(name)
                names[(bit, offset)] = kept
    return names


def read_exceptions(root):
    entries = {}
    for pos, suffix in POS:
        with open(os.path.join(root, suffix + ".exc"), encoding="utf-8") as f:
            for line in f:
                terms = line.split()
                # nltk keeps the last line for a repeated form (a dict assignment).
                entries[pos + terms[0]] = terms[1:]
    return entries


def table(keys_and_payloads):
    offsets, blob = [], bytearray()
    for payload in keys_and_payloads:
        offsets.append(len(blob))
        blob += payload
    offsets.append(len(blob))
    return offsets, bytes(blob)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet"
    index = read_index(root)
    wanted = {(bit, o) for by_pos in index.values() for bit, offs in by_pos.items() for o in offs}
    synsets = read_synsets(root, wanted)
    lemmas = sorted(index, key=lambda s: s.encode("utf-8"))
    lemma_id = {name: i for i, name in enumerate(lemmas)}
    synset_keys = sorted(synsets)
    synset_id = {key: i for i, key in enumerate(synset_keys)}

    lemma_payloads = []
    for name in lemmas:
        out = bytearray(name.encode("utf-8"))
        assert b"\0" not in out
        out.append(0)
        by_pos = index[name]
        out.append(sum(1 << bit for bit in by_pos))
        for bit in sorted(by_pos):
            varint(len(by_pos[bit]), out)
            for offset in by_pos[bit]:
                varint(synset_id[(bit, offset)], out)
        lemma_payloads.append(bytes(out))

    synset_payloads = []
    for key in synset_keys:
        out = bytearray()
        for name in synsets[key]:
            # Every kept name is lower-case, so the index lists it.
            varint(lemma_id[name], out)
        synset_payloads.append(bytes(out))

    exceptions = read_exceptions(root)
    exc_keys = sorted(exceptions, key=lambda s: s.encode("utf-8"))
    exc_payloads = [
        b"\0".join([key.encode("utf-8")] + [b.encode("utf-8") for b in exceptions[key]])
        for key in exc_keys
    ]
    # An exception with no base forms would be indistinguishable from its key alone.
    assert all(exceptions[k] for k in exc_keys)

    lemma_off, lemma_blob = table(lemma_payloads)
    synset_off, synset_blob = table(synset_payloads)
    exc_off, exc_blob = table(exc_payloads)
    out = bytearray(b"WNB1")
    out += struct.pack("<3I", len(lemmas), len(synset_keys), len(exc_keys))
    for offs in (lemma_off, synset_off, exc_off):
        out += struct.pack("<%dI" % len(offs), *offs)
    out += lemma_blob + synset_blob + exc_blob
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "wordnet.bin"), "wb") as f:
        f.write(out)
    print(
        f"wordnet.bin: {len(out)} bytes, {len(lemmas)} lemmas, {len(synset_keys)} synsets, "
        f"{len(exc_keys)} exceptions"
    )


if __name__ == "__main__":
    main()
