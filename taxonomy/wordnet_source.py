"""Read the WordNet 3.0 noun hierarchy from NLTK into plain records, and choose subsets of it.

No Django here: the import service writes what this module computes, and tests can check the graph
against NLTK directly.
"""

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PERSON_OFFSET = 7846  # person.n.01: its subtree is sensitive by default (ImageNet's 2019 filtering)
# Sensitive synsets (a campaign must opt in to label them): each of these and its whole subtree. The rule: the
# synset's members are human beings — a person, the human species or a member of it, a human body — or a group
# of human beings classed by who they are (descent, race, ethnicity, nation, class, condition) or "people" in
# general. WordNet files several of these outside person.n.01, so person.n.01 alone missed them (QA: every leaf
# under animal.n.01 checked as not sensitive, world.n.08 "humans, mankind" among them).
# Left out on purpose: hominid.n.01 (its other branches, australopithecines and fossil apes, are not human
# beings; its human branch is homo.n.02), crowd.n.01 ("a large number of things or people"), and social groups
# defined by what they do (social_group.n.01: organisations, teams, armies), as ImageNet's filter left them.
SENSITIVE_ROOTS: dict[int, str] = {
    PERSON_OFFSET: "person.n.01: a human being",
    2472293: "homo.n.02 (man, human being, human): the human genus; world.n.08 (humanity, mankind) and "
    "homo_sapiens are in its subtree",
    5217168: "human_body.n.01: the body of a human being, person.n.02 among its hyponyms",
    7942152: "people.n.01: any group of human beings collectively (peoples, folk, populace, nation, class, ...)",
    7967382: "ethnic_group.n.01: people of the same race or nationality",
    7967982: "race.n.03: people believed to belong to the same genetic stock",
    8372411: "tribe.n.01 (folk): a social division of people",
    7970721: "family.n.04 (folk, kinfolk): people descended from a common ancestor; people.n.03 is in its subtree",
    8160276: "citizenry.n.01 (people): the body of citizens of a state",
    8180190: "multitude.n.03 (masses, people): the common people generally",
    7971023: "folks.n.01: your parents",
}


def is_sensitive(offset: int, ancestors: Mapping[int, int]) -> bool:
    """Whether a synset with these ancestors (closure row: ancestor offset -> distance) is sensitive: it or an
    ancestor is one of SENSITIVE_ROOTS."""
    return offset in SENSITIVE_ROOTS or any(root in ancestors for root in SENSITIVE_ROOTS)


@dataclass(frozen=True, slots=True)
class SynsetRecord:
    offset: int
    name: str
    words: str
    gloss: str
    lexname: str


@dataclass(frozen=True, slots=True)
class NounGraph:
    synsets: Mapping[int, SynsetRecord]
    parents: Mapping[int, tuple[tuple[int, str], ...]]  # offset -> ((parent offset, kind), ...)

    def children(self) -> dict[int, list[int]]:
        kids: dict[int, list[int]] = {offset: [] for offset in self.synsets}
        for child, links in self.parents.items():
            for parent, _kind in links:
                kids[parent].append(child)
        return kids

    def offset_of(self, name: str) -> int:
        for record in self.synsets.values():
            if record.name == name:
                return record.offset
        raise KeyError(name)


@functools.cache
def load_noun_graph(nltk_data_dir: Path | None = None) -> NounGraph:
    """All noun synsets with their hypernym and instance-hypernym links (a DAG: some have two parents).
    Cached: reading WordNet through NLTK takes ~8 s and the data never changes within a process."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    from taxonomy.wordnet_data import corpus_pointers

    if nltk_data_dir is not None and str(nltk_data_dir) not in nltk.data.path:
        # NLTK only reads corpora under its data path (nltk.pathsec), so register ours first.
        nltk.data.path.insert(0, str(nltk_data_dir))
    # The folder or NLTK's zip, under the configured folder only: ensure_wordnet accepts a zip as present, and
    # looking for the folder alone failed on one ("Resource 'wordnet' not found") or read another WordNet elsewhere
    # on NLTK's path.
    root = next(corpus_pointers(nltk_data_dir), None)
    if root is None:
        where = nltk_data_dir if nltk_data_dir is not None else "NLTK's data path"
        raise LookupError(f"WordNet is not under {where}: run `manage.py ensure_wordnet` first.")
    wordnet = WordNetCorpusReader(root, None)
    synsets: dict[int, SynsetRecord] = {}
    parents: dict[int, tuple[tuple[int, str], ...]] = {}
    for synset in wordnet.all_synsets("n"):
        offset = synset.offset()
        synsets[offset] = SynsetRecord(
            offset=offset,
            name=synset.name(),
            words=", ".join(lemma.replace("_", " ") for lemma in synset.lemma_names()),
            gloss=synset.definition(),
            lexname=synset.lexname(),
        )
        parents[offset] = tuple(
            [(p.offset(), "hypernym") for p in synset.hypernyms()]
            + [(p.offset(), "instance") for p in synset.instance_hypernyms()]
        )
    return NounGraph(synsets=synsets, parents=parents)


def topological_order(graph: NounGraph) -> list[int]:
    """Parents before children (Kahn's algorithm), so closures can be built in one pass."""
    pending = {offset: len(links) for offset, links in graph.parents.items()}
    kids = graph.children()
    ready = sorted(offset for offset, count in pending.items() if count == 0)
    order: list[int] = []
    while ready:
        offset = ready.pop()
        order.append(offset)
        for child in kids[offset]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    if len(order) != len(pending):
        raise ValueError("The hypernym graph has a cycle; WordNet 3.0 nouns should form a DAG.")
    return order


def ancestor_distances(graph: NounGraph) -> dict[int, dict[int, int]]:
    """For every synset, its ancestors with the length of the shortest is-a path to each."""
    closure: dict[int, dict[int, int]] = {}
    for offset in topological_order(graph):
        mine: dict[int, int] = {}
        for parent, _kind in graph.parents[offset]:
            if mine.get(parent, 2) > 1:
                mine[parent] = 1
            for ancestor, distance in closure[parent].items():
                if mine.get(ancestor, distance + 2) > distance + 1:
                    mine[ancestor] = distance + 1
        closure[offset] = mine
    return closure


def depths(graph: NounGraph, closure: Mapping[int, Mapping[int, int]]) -> dict[int, int]:
    """Shortest distance to a root (entity.n.01 is the only noun root in WordNet 3.0)."""
    roots = {offset for offset, links in graph.parents.items() if not links}
    return {
        offset: min((d for a, d in ancestors.items() if a in roots), default=0) for offset, ancestors in closure.items()
    }


def select(
    graph: NounGraph,
    closure: Mapping[int, Mapping[int, int]],
    *,
    roots: Iterable[int] = (),
    offsets: Iterable[int] = (),
) -> set[int]:
    """Synsets to import: each root with its descendants and its ancestors up to entity.n.01; each listed
    offset with its ancestors. (A descendant's other parents outside the root's line are not added: the
    import links whatever is present, and fills in the rest when those synsets arrive later.)"""
    root_set = set(roots)
    chosen: set[int] = set()
    for offset, ancestors in closure.items():
        if offset in root_set or not root_set.isdisjoint(ancestors):
            chosen.add(offset)
    for offset in [*root_set, *offsets]:
        chosen.add(offset)
        chosen.update(closure[offset])
    return chosen
